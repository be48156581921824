package pwcheck

import (
	"context"
	"fmt"
	"io"
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
	// Start, when set, is when the budget began (before the word lists
	// were checked, say); default: when Run is called.
	Start time.Time
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
	// ListErrors say why a word list could not be tried in full (it
	// could not be read, or it changed since it was checked).
	ListErrors []string
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

// A unit is candidates to try against one target (index into targets).
type unit struct {
	t     int
	cands []string
}

// chunkWords is how many words of a batch make one unit of work.
const chunkWords = 256

// wordsHeld counts the words of word lists in memory, for the test that
// a search never holds more than a batch.
var wordsHeld atomic.Int64

// testHookBatch, when set, is called after each batch is read with the
// words then held.
var testHookBatch func(held int64)

// streamList reads a word list batch by batch, calling try with each. It
// stops between batches when the budget is spent (stop reports it and
// marks the roles short of the list). A list that cannot be read to its
// end, or whose words are no longer those that were checked (the file
// changed), is an error: no role counts it as tried.
func (s Search) streamList(li *List, stop func(bool) bool, try func([]string)) (bool, error) {
	r, err := openWords(li.name, li.open)
	if err != nil {
		return false, err
	}
	defer r.Close()
	for {
		if stop(true) {
			return false, nil
		}
		batch, err := r.batch()
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, err
		}
		held := wordsHeld.Add(int64(len(batch)))
		if testHookBatch != nil {
			testHookBatch(held)
		}
		try(batch)
		wordsHeld.Add(-int64(len(batch)))
	}
	if r.id() != li.ID {
		return false, fmt.Errorf("%s: the word list changed during the search: not counted as tried", li.name)
	}
	return true, nil
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
	var work int64
	for l, li := range lists {
		for _, i := range order {
			t := &targets[i]
			if cached[i] != nil || tried[i][l] || !applies(t, l) {
				continue
			}
			if li.open != nil {
				work += int64(li.n) * t.cost()
			} else {
				work += int64(len(li.candidates(t.Role))) * t.cost()
			}
		}
	}

	// The budget counts from Start when set: reading the word lists up
	// front is part of the run.
	if !s.Start.IsZero() {
		start = s.Start
	}
	var deadline time.Time
	if s.Budget > 0 {
		deadline = start.Add(s.Budget)
	}
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
	// short[i]: a unit of the current list stopped before trying all its
	// words against target i.
	short := make([]atomic.Bool, n)
	// runUnits tries the units of one list over the workers. The lists
	// run one after the other, so the first list that matches is the
	// verdict whatever the number of workers.
	runUnits := func(l int, units []unit) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < min(workers, len(units)); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var buf []byte
				for {
					k := int(next.Add(1) - 1)
					if k >= len(units) || ctx.Err() != nil {
						if k < len(units) {
							short[units[k].t].Store(true)
						}
						return
					}
					u := units[k]
					t := &targets[u.t]
					bounded := !t.cheap() || !lists[l].builtin
					if bounded && stop(true) {
						short[u.t].Store(true)
						continue // the budget is spent; cheap units may follow
					}
					if found[u.t].Load() {
						// An earlier list (or unit) matched; the verdict
						// is the first list that matches.
						done.Add(int64(len(u.cands)) * t.cost())
						continue
					}
					for j, c := range u.cands {
						// A clock read per guess is nothing beside a SCRAM
						// guess; md5 guesses check it now and then.
						if (t.cost() > 1 || j%256 == 0) && stop(bounded) {
							short[u.t].Store(true)
							break
						}
						guesses.Add(1)
						done.Add(t.cost())
						if t.match(c, &buf) {
							if !found[u.t].Swap(true) {
								matched[u.t][l] = true
								weakCount.Add(1)
							}
							break
						}
					}
				}
			}()
		}
		wg.Wait()
	}
	var listErrs []string
	for l, li := range lists {
		var todo []int
		for _, i := range order {
			if cached[i] == nil && !tried[i][l] && applies(&targets[i], l) {
				todo = append(todo, i)
				short[i].Store(false)
			}
		}
		if len(todo) == 0 {
			continue
		}
		if li.open == nil {
			units := make([]unit, 0, len(todo))
			for _, i := range todo {
				units = append(units, unit{i, li.candidates(targets[i].Role)})
			}
			runUnits(l, units)
			for _, i := range todo {
				tried[i][l] = !short[i].Load()
			}
			continue
		}
		complete, err := s.streamList(li, stop, func(batch []string) {
			// Each role's share of a batch is cut in chunks so that the
			// workers stay busy even when few roles are left.
			var units []unit
			for _, i := range todo {
				if found[i].Load() {
					done.Add(int64(len(batch)) * targets[i].cost()) // as if tried: progress ends at 100%
					continue
				}
				for k := 0; k < len(batch); k += chunkWords {
					units = append(units, unit{i, batch[k:min(k+chunkWords, len(batch))]})
				}
			}
			runUnits(l, units)
		})
		if err != nil {
			listErrs = append(listErrs, err.Error())
		}
		if !complete {
			for _, i := range todo {
				short[i].Store(true)
			}
		}
		for _, i := range todo {
			tried[i][l] = !short[i].Load()
		}
	}
	close(tick)
	tickWG.Wait()

	st := Stats{Roles: n, Guesses: guesses.Load(), ListErrors: listErrs}
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
		} else if stopped.Load() || len(listErrs) == 0 {
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
