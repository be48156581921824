package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/pwcheck"
)

// noCacheEnv turns the weak-password verdict cache off (any value but 0).
const noCacheEnv = "PGAEGIS_NO_PASSWORD_CACHE"

// passwordCacheDir is the verdict cache's directory, "" when it is off.
func passwordCacheDir(off bool) string {
	if v := os.Getenv(noCacheEnv); off || (v != "" && v != "0") {
		return ""
	}
	d, err := pwcheck.DefaultCacheDir()
	if err != nil {
		return "" // no home, no cache: the search works without it
	}
	return d
}

func passwordsCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "passwords [connection options] [--wordlist FILE] [--budget D]",
		Short: "search the stored password verifiers for weak passwords (offline, deep)",
		Long: `Search the password verifiers of every login role for weak passwords,
offline, as an attacker with a copy of pg_authid would: the role name and
its variants, the built-in dictionary, then each --wordlist. Nothing logs
in. Needs a superuser, over a local unix socket or TLS that verified the
server (sslmode=verify-ca or verify-full): a verifier is as good as a
password to an eavesdropper.

Only the verdict is shown (which list matched), never the password.
Verdicts are cached per verifier (keyed by HMAC) under the user cache
directory, so a role whose verifier did not change is not searched again,
and 'pgaegis audit' uses them too. See docs/passwords.md.

Exit codes: 0 no weak password, 1 weak passwords found, 2 an error, or
the budget ran out before every role was searched.`,
		Example: `  sudo -u postgres pgaegis passwords
  pgaegis passwords -d "host=db.example.com sslmode=verify-full user=postgres" --budget 30m
  pgaegis passwords --wordlist /usr/share/wordlists/rockyou.txt --format json -o weak.json`,
		Args: noArgs,
	}
	var conn connFlags
	conn.register(cmd)
	fs := cmd.Flags()
	budget := fs.Duration("budget", 10*time.Minute, "stop searching after this long (0: no limit); what was searched is cached")
	wordlists := fs.StringArray("wordlist", nil, "also try the passwords in `FILE`, one per line (repeatable)")
	format := fs.String("format", "text", "text or json")
	out := fs.StringP("output", "o", "", "write the result to this file instead of stdout")
	all := fs.Bool("all", false, "list every role searched, not only the weak ones")
	workers := fs.Int("workers", 0, "guesses run at once (default: every core)")
	noCache := fs.Bool("no-cache", false, "do not read or write the verdict cache (also "+noCacheEnv+"=1)")
	completeValues(cmd, "format", "text", "json")
	cmd.MarkFlagFilename("wordlist")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		if *format != "text" && *format != "json" {
			return ExitError, usagef("unknown --format %q (text or json)", *format)
		}
		if *budget < 0 || *workers < 0 {
			return ExitError, usagef("--budget and --workers cannot be negative")
		}
		// The budget counts from here: checking a large word list is part
		// of the search.
		start := time.Now()
		// The word lists are checked first (one streaming pass, nothing
		// kept): a bad file is said before connecting.
		var lists []*pwcheck.List
		var wl []wordListInfo
		for _, p := range *wordlists {
			l, err := pwcheck.LoadWordList(p)
			if err != nil {
				return ExitError, err
			}
			lists = append(lists, l)
			wl = append(wl, wordListInfo{File: p, ID: l.ID, Words: l.Len()})
		}
		cfg, err := conn.config(env)
		if err != nil {
			return ExitError, err
		}
		search := pwcheck.Deep(*budget, lists...)
		search.Workers = *workers
		search.Start = start
		cacheDir := passwordCacheDir(*noCache)
		if cacheDir != "" {
			c, err := pwcheck.OpenCache(cacheDir)
			if err != nil {
				fmt.Fprintf(env.Stderr, "pgaegis passwords: warning: the verdict cache is not used (searching without it): %s\n", esc(err.Error()))
				cacheDir = ""
			} else {
				search.Cache = c
			}
		}
		show := progress(env)
		if show != nil {
			start := time.Now()
			search.Progress = func(p pwcheck.Progress) {
				if !p.Final {
					show("%s", progressLine(p, time.Since(start)))
				}
			}
		}
		rep, err := collect.Passwords(ctx, collect.Options{Conn: cfg, Progress: show}, search)
		clearProgress(env)
		if err != nil {
			return ExitError, err
		}
		res := passwordsResult{Target: rep.Target, Search: search.Name, Dictionary: pwcheck.DictVersion, WordLists: wl,
			BudgetMS: budget.Milliseconds(), Cache: cacheDir}
		for _, r := range rep.Results {
			res.Roles = append(res.Roles, passwordRole{Role: r.Role, Verifier: r.Kind, Weak: r.Verdict != "", Verdict: r.Verdict,
				List: r.List, Complete: r.Complete, Cached: r.Cached})
		}
		st := rep.Stats
		res.Summary = passwordSummary{Roles: st.Roles, Weak: st.Weak, Incomplete: st.Incomplete, Cached: st.Cached,
			Guesses: st.Guesses, ElapsedMS: st.Elapsed.Milliseconds(), BudgetSpent: st.BudgetSpent, Interrupted: st.Interrupted}
		if st.CacheError != "" {
			fmt.Fprintf(env.Stderr, "pgaegis passwords: warning: %s\n", esc(st.CacheError))
		}
		for _, e := range st.ListErrors {
			fmt.Fprintf(env.Stderr, "pgaegis passwords: warning: %s\n", esc(e))
		}
		o, err := openOutput(env, *out)
		if err != nil {
			return ExitError, err
		}
		if *format == "json" {
			err = writeJSON(&Env{Stdout: o.w}, res)
		} else {
			err = writePasswordsText(o.w, &res, *all, wl)
		}
		if err != nil {
			o.abort()
			return ExitError, err
		}
		if err := o.commit(); err != nil {
			return ExitError, err
		}
		switch {
		case st.Weak > 0:
			return ExitFindings, nil
		case st.Interrupted:
			return ExitError, fmt.Errorf("interrupted: %d of %d roles were not searched in full (what was searched is cached)", st.Incomplete, st.Roles)
		case len(st.ListErrors) > 0 && !st.BudgetSpent && st.Incomplete > 0:
			return ExitError, fmt.Errorf("incomplete: %d of %d roles were not searched in full: a word list could not be read to its end", st.Incomplete, st.Roles)
		case st.BudgetSpent:
			return ExitError, fmt.Errorf("incomplete: the budget (%s) ran out before %d of %d roles were searched in full; run again (what was searched is cached) or raise --budget", *budget, st.Incomplete, st.Roles)
		}
		return ExitOK, nil
	})
	cmd.AddCommand(passwordsMigrateCmd(env))
	return cmd
}

// progressLine is the terminal's progress: share of the work (in hash
// iterations, so a SCRAM guess weighs its iteration count) and time left.
func progressLine(p pwcheck.Progress, elapsed time.Duration) string {
	msg := fmt.Sprintf("searching: %d guesses, %d weak", p.Guesses, p.Weak)
	if p.Work > 0 {
		msg += fmt.Sprintf(", %.1f%%", 100*float64(p.Done)/float64(p.Work))
		if p.Done > 0 && elapsed > time.Second {
			left := time.Duration(float64(elapsed) * float64(p.Work-p.Done) / float64(p.Done))
			msg += ", about " + left.Round(time.Second).String() + " left"
		}
	}
	return msg
}

type wordListInfo struct {
	File  string `json:"file"`
	ID    string `json:"id"`
	Words int    `json:"words"`
}

// passwordsResult is the JSON form; it holds no password and no verifier.
type passwordsResult struct {
	Target     string          `json:"target"`
	Search     string          `json:"search"`
	Dictionary string          `json:"dictionary_version"`
	WordLists  []wordListInfo  `json:"word_lists,omitempty"`
	BudgetMS   int64           `json:"budget_ms"`
	Cache      string          `json:"cache,omitempty"`
	Roles      []passwordRole  `json:"roles"`
	Summary    passwordSummary `json:"summary"`
}

type passwordRole struct {
	Role     string `json:"role"`
	Verifier string `json:"verifier"`
	Weak     bool   `json:"weak"`
	Verdict  string `json:"verdict,omitempty"`
	List     string `json:"list,omitempty"`
	Complete bool   `json:"complete"`
	Cached   bool   `json:"cached"`
}

type passwordSummary struct {
	Roles       int   `json:"roles"`
	Weak        int   `json:"weak"`
	Incomplete  int   `json:"incomplete"`
	Cached      int   `json:"cached"`
	Guesses     int64 `json:"guesses"`
	ElapsedMS   int64 `json:"elapsed_ms"`
	BudgetSpent bool  `json:"budget_spent"`
	Interrupted bool  `json:"interrupted"`
}

// listName says which list matched, for people.
func listName(id string, wl []wordListInfo) string {
	switch {
	case strings.HasPrefix(id, "name/"):
		return "role name"
	case strings.HasPrefix(id, "variants/"):
		return "role name variant"
	case strings.HasPrefix(id, "top/"):
		return "most common passwords"
	case strings.HasPrefix(id, "common/"):
		return "built-in dictionary"
	}
	for _, w := range wl {
		if w.ID == id {
			return "word list " + w.File
		}
	}
	if strings.HasPrefix(id, "wordlist/") {
		return "a word list of an earlier run"
	}
	return id
}

func writePasswordsText(w interface{ Write([]byte) (int, error) }, r *passwordsResult, all bool, wl []wordListInfo) error {
	env := textEnv(&Env{Stdout: w}) // role names are chosen by whoever created them
	out := env.Stdout
	tw := tabwriter.NewWriter(out, 0, 2, 2, ' ', 0)
	rows := 0
	for _, p := range r.Roles {
		if !p.Weak && !all {
			continue
		}
		if rows == 0 {
			fmt.Fprintln(tw, "ROLE\tVERIFIER\tMATCHED\tVERDICT")
		}
		rows++
		matched, verdict := listName(p.List, wl), p.Verdict
		switch {
		case p.Weak:
		case p.Complete:
			matched, verdict = "-", "not found"
		default:
			matched, verdict = "-", "not searched in full (budget)"
		}
		if p.Cached {
			verdict += " (cached)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", esc(p.Role), p.Verifier, esc(matched), esc(verdict))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := r.Summary
	if rows > 0 {
		fmt.Fprintln(out)
	}
	what := "no weak password"
	if s.Weak > 0 {
		what = fmt.Sprintf("%d weak password%s", s.Weak, plural(s.Weak))
	}
	fmt.Fprintf(out, "%s among %d login role%s with a password; %d guesses in %s", what, s.Roles, plural(s.Roles), s.Guesses, (time.Duration(s.ElapsedMS) * time.Millisecond).String())
	if r.Cache != "" {
		fmt.Fprintf(out, ", %d answered by the cache (%s)", s.Cached, esc(r.Cache))
	}
	fmt.Fprintln(out)
	if s.Incomplete > 0 {
		fmt.Fprintf(out, "%d role%s not searched in full: the search was %s\n", s.Incomplete, plural(s.Incomplete), map[bool]string{true: "interrupted", false: "stopped by --budget"}[s.Interrupted])
	}
	if s.Weak > 0 {
		fmt.Fprintln(out, "passwords are never shown: set a new random password for each weak role (\\password in psql hashes it client-side)")
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
