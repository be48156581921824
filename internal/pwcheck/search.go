package pwcheck

import (
	"context"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Search says which lists are tried, within what budget.
type Search struct {
	// Name is recorded in the cache beside each verdict ("default", "deep").
	Name string
	// Lists are tried against every verifier, in order: each list for
	// every role before the next list, so a short budget still covers
	// the likeliest guesses of every role.
	Lists []*List
	// Cheap lists are tried as well against md5 and plaintext passwords,
	// where a guess costs one MD5 rather than thousands of HMACs.
	Cheap []*List
	// Budget bounds the wall time of the search; 0 is no bound. The
	// built-in lists are tried in full against md5 and plaintext
	// passwords whatever the budget (about 90 MD5s a role).
	Budget time.Duration
	// Workers is how many guesses run at once (0: every core).
	Workers int
	// Cache, when set, answers for verifiers already searched and keeps
	// this search's verdicts.
	Cache *Cache
	// Progress, when set, is called every ProgressEvery (default 250ms)
	// and once at the end.
	Progress      func(Progress)
	ProgressEvery time.Duration
}

// Default is the audit's search: the role name and the few most common
// passwords against every verifier, then the name's usual variants; md5
// and plaintext passwords also against the whole built-in dictionary.
func Default(budget time.Duration) Search {
	return Search{Name: "default", Lists: []*List{ListName, ListTop, ListVariants}, Cheap: []*List{ListCommon}, Budget: budget}
}

// Deep tries every built-in list against every verifier, then the word
// lists given.
func Deep(budget time.Duration, words ...*List) Search {
	return Search{Name: "deep", Lists: append([]*List{ListName, ListTop, ListVariants, ListCommon}, words...), Budget: budget}
}

// Result is one role's verdict. It never holds the password guessed.
type Result struct {
	Role string
	Kind string
	// Verdict is "" when nothing matched, else what the match means.
	Verdict string
	// List is the ID of the list that matched ("name/1", "wordlist/…").
	List string
	// Complete: a list matched, or every list of the search was tried.
	Complete bool
	// Cached: answered by the cache, with no guess of this run.
	Cached bool
}

// Stats say what a run did.
type Stats struct {
	Roles, Weak, Cached, Incomplete int
	// Guesses counts candidate passwords hashed (or compared) in this run.
	Guesses int64
	Elapsed time.Duration
	// BudgetSpent: the budget ran out with work left; Interrupted: the
	// context was cancelled with work left.
	BudgetSpent, Interrupted bool
	// CacheError says why the cache could not be written ("" when fine).
	CacheError string
}

// Progress is a snapshot of a running search; Work and Done are in units
// of one hash iteration (a SCRAM guess costs its iteration count).
type Progress struct {
	Work, Done int64
	Guesses    int64
	Weak       int
	Elapsed    time.Duration
	Final      bool
}

type item struct {
	t, l int // target, list (index into the search's lists)
}

// Run searches targets; results are in the order of targets, and do not
// depend on how the work was spread over the workers (only on how far
// the budget reached).
func (s Search) Run(ctx context.Context, targets []Target) ([]Result, Stats) {
	start := time.Now()
	lists := append(append([]*List{}, s.Lists...), s.Cheap...)
	applies := func(t *Target, l int) bool { return l < len(s.Lists) || t.cheap() }
	n := len(targets)
	tried := make([][]bool, n)
	matched := make([][]bool, n)
	cached := make([]*Entry, n)
	// preTried counts the lists the cache said were tried: an entry is
	// written again only when this run added to it.
	preTried := make([]int, n)
	found := make([]atomic.Bool, n)
	var weakCount atomic.Int64
	var keys []string
	if s.Cache != nil {
		keys = s.Cache.ids(targets)
	}
	for i := range targets {
		tried[i] = make([]bool, len(lists))
		matched[i] = make([]bool, len(lists))
		if s.Cache == nil || targets[i].cheap() {
			continue
		}
		e, ok := s.Cache.get(keys[i])
		if !ok {
			continue
		}
		if e.Verdict != "" {
			cached[i] = &e
			found[i].Store(true)
			weakCount.Add(1)
			continue
		}
		done := map[string]bool{}
		for _, id := range e.Tried {
			done[id] = true
		}
		all := true
		for l, li := range lists {
			tried[i][l] = done[li.ID]
			if tried[i][l] {
				preTried[i]++
			}
			all = all && (tried[i][l] || !applies(&targets[i], l))
		}
		if all {
			cached[i] = &e
		}
	}

	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		ta, tb := &targets[order[a]], &targets[order[b]]
		if ta.Priority != tb.Priority {
			return ta.Priority < tb.Priority
		}
		return ta.Role < tb.Role
	})
	var items []item
	var work int64
	for l := range lists {
		for _, i := range order {
			t := &targets[i]
			if cached[i] != nil || tried[i][l] || !applies(t, l) {
				continue
			}
			items = append(items, item{i, l})
			work += int64(len(lists[l].candidates(t.Role))) * t.cost()
		}
	}

	var deadline time.Time
	if s.Budget > 0 {
		deadline = start.Add(s.Budget)
	}
	var next atomic.Int64
	var done, guesses atomic.Int64
	var stopped atomic.Bool
	stop := func(bounded bool) bool {
		if ctx.Err() != nil {
			return true
		}
		if !bounded {
			return false
		}
		if stopped.Load() {
			return true
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			stopped.Store(true)
			return true
		}
		return false
	}
	workers := s.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if workers > len(items) {
		workers = len(items)
	}
	progress := func(final bool) {
		if s.Progress != nil {
			s.Progress(Progress{Work: work, Done: done.Load(), Guesses: guesses.Load(), Weak: int(weakCount.Load()), Elapsed: time.Since(start), Final: final})
		}
	}
	tick := make(chan struct{})
	var tickWG sync.WaitGroup
	if s.Progress != nil {
		every := s.ProgressEvery
		if every <= 0 {
			every = 250 * time.Millisecond
		}
		tickWG.Add(1)
		go func() {
			defer tickWG.Done()
			tk := time.NewTicker(every)
			defer tk.Stop()
			for {
				select {
				case <-tick:
					return
				case <-tk.C:
					progress(false)
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for {
				k := int(next.Add(1) - 1)
				if k >= len(items) || ctx.Err() != nil {
					return
				}
				it := items[k]
				t := &targets[it.t]
				bounded := !t.cheap() || !lists[it.l].builtin
				if bounded && stop(true) {
					continue // the budget is spent; cheap items may follow
				}
				cands := lists[it.l].candidates(t.Role)
				if found[it.t].Load() {
					// An earlier list matched; this one cannot change the
					// verdict, which is the first list that matches.
					done.Add(int64(len(cands)) * t.cost())
					continue
				}
				complete := true
				for j, c := range cands {
					// A clock read per guess is nothing beside a SCRAM
					// guess; md5 guesses check it now and then.
					if (t.cost() > 1 || j%256 == 0) && stop(bounded) {
						complete = false
						break
					}
					guesses.Add(1)
					done.Add(t.cost())
					if t.match(c, &buf) {
						matched[it.t][it.l] = true
						if !found[it.t].Swap(true) {
							weakCount.Add(1)
						}
						break
					}
				}
				tried[it.t][it.l] = complete
			}
		}()
	}
	wg.Wait()
	close(tick)
	tickWG.Wait()

	st := Stats{Roles: n, Guesses: guesses.Load()}
	results := make([]Result, n)
	for i := range targets {
		t := &targets[i]
		r := Result{Role: t.Role, Kind: t.Kind}
		if e := cached[i]; e != nil {
			r.Verdict, r.List, r.Complete, r.Cached = e.Verdict, e.List, true, true
			st.Cached++
			if s.Cache != nil {
				s.Cache.touch(keys[i])
			}
		} else {
			r.Complete = true
			var ids []string
			for l := range lists {
				if matched[i][l] && r.Verdict == "" {
					r.Verdict, r.List = lists[l].Verdict, lists[l].ID
				}
				if tried[i][l] {
					ids = append(ids, lists[l].ID)
				} else if applies(t, l) {
					r.Complete = false
				}
			}
			if r.Verdict != "" {
				r.Complete = true
			}
			if s.Cache != nil && !t.cheap() && (r.Verdict != "" || len(ids) > preTried[i]) {
				s.Cache.put(keys[i], Entry{Verdict: r.Verdict, List: r.List, Tried: ids, By: s.Name})
			}
		}
		if r.Verdict != "" {
			st.Weak++
		}
		if !r.Complete {
			st.Incomplete++
		}
		results[i] = r
	}
	if st.Incomplete > 0 {
		if ctx.Err() != nil {
			st.Interrupted = true
		} else {
			st.BudgetSpent = true
		}
	}
	if s.Cache != nil {
		if err := s.Cache.Save(); err != nil {
			st.CacheError = err.Error()
		}
	}
	st.Elapsed = time.Since(start)
	progress(true)
	return results, st
}
