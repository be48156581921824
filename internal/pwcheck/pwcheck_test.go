package pwcheck

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func md5Verifier(role, pw string) string {
	s := md5.Sum([]byte(pw + role))
	return "md5" + hex.EncodeToString(s[:])
}

// scramVerifier builds a verifier as the server does, with a random salt.
func scramVerifier(pw string, iter int) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	salted, _ := pbkdf2.Key(sha256.New, pw, salt, iter, 32)
	ck := hmac.New(sha256.New, salted)
	ck.Write([]byte("Client Key"))
	stored := sha256.Sum256(ck.Sum(nil))
	sk := hmac.New(sha256.New, salted)
	sk.Write([]byte("Server Key"))
	b := base64.StdEncoding.EncodeToString
	return "SCRAM-SHA-256$" + strconv.Itoa(iter) + ":" + b(salt) + "$" + b(stored[:]) + ":" + b(sk.Sum(nil))
}

func run1(t *testing.T, s Search, role, stored string) Result {
	t.Helper()
	res, _ := s.Run(context.Background(), []Target{NewTarget(role, stored, 0)})
	return res[0]
}

func TestDeepVerdicts(t *testing.T) {
	cases := []struct {
		role, stored, want string
	}{
		{"app", md5Verifier("app", "app"), RoleName},
		{"app", md5Verifier("app", "app123"), RoleName},
		{"app", md5Verifier("app", "changeme"), Common},
		{"app", md5Verifier("app", "x7#Lq!vR2"), ""},
		{"bob", scramVerifier("bob", 64), RoleName},
		{"bob", scramVerifier("Bob", 64), RoleName},
		{"bob", scramVerifier("postgres", 64), Common},
		{"bob", scramVerifier("qazwsx", 64), Common},
		{"bob", scramVerifier("long and unguessable", 64), ""},
		{"carol", "carol", RoleName},
		{"carol", "secret", Common},
		{"élan", scramVerifier("Élan", 64), RoleName},
	}
	for _, c := range cases {
		r := run1(t, Deep(0), c.role, c.stored)
		if r.Verdict != c.want || !r.Complete {
			t.Errorf("deep %s %.20s…: %q complete=%v, want %q", c.role, c.stored, r.Verdict, r.Complete, c.want)
		}
	}
}

// The default search tries the cheap verifiers against everything and
// SCRAM ones against the name, its variants and the top of the list only.
func TestDefaultSearch(t *testing.T) {
	cases := []struct {
		role, stored, want string
	}{
		{"app", scramVerifier("app", 64), RoleName},
		{"app", scramVerifier("app123", 64), RoleName},
		{"app", scramVerifier("changeme", 64), Common},
		{"app", scramVerifier("qwerty", 64), ""}, // beyond the top: the deep search's
		{"app", md5Verifier("app", "qwerty"), Common},
		{"app", "qwerty", Common},
	}
	for _, c := range cases {
		r := run1(t, Default(0), c.role, c.stored)
		if r.Verdict != c.want || !r.Complete {
			t.Errorf("default %s %.20s…: %q complete=%v, want %q", c.role, c.stored, r.Verdict, r.Complete, c.want)
		}
	}
}

// Verdicts do not depend on how many workers share the work.
func TestDeterministic(t *testing.T) {
	var targets []Target
	for i := 0; i < 40; i++ {
		role := fmt.Sprintf("r%d", i)
		pw := []string{role, "postgres", "x-strong-" + role, role + "1"}[i%4]
		targets = append(targets, NewTarget(role, scramVerifier(pw, 16), i%3))
	}
	// A role whose password is in two lists: the first list names it.
	targets = append(targets, NewTarget("postgres", scramVerifier("postgres", 16), 0))
	var first []Result
	for _, w := range []int{1, 2, 7} {
		s := Deep(0)
		s.Workers = w
		res, st := s.Run(context.Background(), targets)
		if st.Incomplete != 0 {
			t.Fatalf("workers %d: %d incomplete", w, st.Incomplete)
		}
		if first == nil {
			first = res
		} else if !reflect.DeepEqual(res, first) {
			t.Errorf("workers %d: results differ from workers 1", w)
		}
	}
	if last := first[len(first)-1]; last.List != ListName.ID {
		t.Errorf("postgres/postgres matched by %s, want the name list", last.List)
	}
}

func TestBudgetStopsTheSearch(t *testing.T) {
	var targets []Target
	for i := 0; i < 50; i++ {
		targets = append(targets, NewTarget(fmt.Sprintf("r%d", i), scramVerifier("strong-and-long", 4096), 0))
	}
	s := Deep(time.Millisecond)
	res, st := s.Run(context.Background(), targets)
	if !st.BudgetSpent || st.Incomplete == 0 {
		t.Fatalf("stats %+v: the budget did not stop the search", st)
	}
	for _, r := range res {
		if r.Verdict != "" {
			t.Errorf("%s: verdict %q from a search that was stopped", r.Role, r.Verdict)
		}
	}
	// md5 verifiers are tried against the built-in lists whatever the
	// budget: their verdicts must not depend on how busy the machine is.
	cheap := []Target{NewTarget("m", md5Verifier("m", "qazwsx"), 0), NewTarget("p", "qwerty", 0)}
	res, st = Default(time.Nanosecond).Run(context.Background(), append(targets[:5:5], cheap...))
	if res[5].Verdict != Common || res[6].Verdict != Common || !res[5].Complete || st.Incomplete != 5 {
		t.Errorf("md5 under a spent budget: %+v %+v, %+v", res[5], res[6], st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, st := Deep(0).Run(ctx, targets); !st.Interrupted || st.Guesses != 0 {
		t.Errorf("cancelled context: %+v", st)
	}
}

func TestProgress(t *testing.T) {
	var last Progress
	calls := 0
	s := Deep(0)
	s.Progress = func(p Progress) { last = p; calls++ }
	s.ProgressEvery = time.Millisecond
	s.Run(context.Background(), []Target{NewTarget("a", scramVerifier("zz-strong", 256), 0)})
	if calls == 0 || !last.Final || last.Done != last.Work || last.Work == 0 {
		t.Errorf("progress: %d calls, last %+v", calls, last)
	}
}

func TestCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	open := func() *Cache {
		c, err := OpenCache(dir)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	stored := map[string]string{
		"weak":   scramVerifier("weak", 64),
		"top":    scramVerifier("admin", 64),
		"strong": scramVerifier("Strong-and-long-1", 64),
		"md5":    md5Verifier("md5", "md5"),
	}
	targets := func() []Target {
		var out []Target
		for _, r := range []string{"md5", "strong", "top", "weak"} {
			out = append(out, NewTarget(r, stored[r], 0))
		}
		return out
	}
	s := Default(0)
	s.Cache = open()
	first, st := s.Run(context.Background(), targets())
	if st.Guesses == 0 || st.Cached != 0 || st.CacheError != "" {
		t.Fatalf("first run: %+v", st)
	}
	// A second run (a new process) hashes nothing for SCRAM; md5 is
	// searched again (never cached) and is cheap.
	s.Cache = open()
	second, st := s.Run(context.Background(), targets())
	md5Guesses := int64(1 + len(ListTop.words) + len(variants("md5")) + len(ListCommon.words))
	if st.Guesses > md5Guesses || st.Cached != 3 {
		t.Errorf("second run: %+v, want only md5 guesses (%d) and 3 cached", st, md5Guesses)
	}
	for i := range first {
		first[i].Cached = second[i].Cached
	}
	if !reflect.DeepEqual(first, second) {
		t.Errorf("cached results differ:\n%+v\n%+v", first, second)
	}
	// A deep search later is not skipped: only the lists the default
	// did not try are tried, for the verifier not found weak.
	d := Deep(0)
	d.Cache = open()
	_, st = d.Run(context.Background(), targets()[1:])
	if st.Guesses != int64(len(ListCommon.words)) || st.Cached != 2 {
		t.Errorf("deep after default: %+v, want %d guesses (the rest of the dictionary for one role)", st, len(ListCommon.words))
	}
	d.Cache = open()
	if _, st = d.Run(context.Background(), targets()[1:]); st.Guesses != 0 || st.Cached != 3 {
		t.Errorf("deep again: %+v, want nothing hashed", st)
	}
	// A changed verifier is searched again.
	stored["strong"] = scramVerifier("weak", 64)
	s.Cache = open()
	res, st := s.Run(context.Background(), targets()[1:2])
	if st.Cached != 0 || st.Guesses == 0 {
		t.Errorf("changed verifier: %+v, want a new search", st)
	}
	_ = res
	// The same verifier under another role name (ALTER ROLE RENAME keeps
	// SCRAM verifiers) is another entry: the name guesses differ.
	s.Cache = open()
	if _, st = s.Run(context.Background(), []Target{NewTarget("renamed", stored["weak"], 0)}); st.Cached != 0 {
		t.Errorf("renamed role answered from the cache: %+v", st)
	}

	// The files: private, and nothing of the verifiers or names in them.
	for name, want := range map[string]os.FileMode{".": 0o700, keyFile: 0o600, verdictsFile: 0o600} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", name, st.Mode().Perm(), want)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, verdictsFile))
	if err != nil {
		t.Fatal(err)
	}
	for role, v := range stored {
		_, keys, _ := strings.Cut(strings.TrimPrefix(v, "SCRAM-SHA-256$"), "$")
		for _, frag := range []string{v, keys, strings.TrimPrefix(v, "md5"), `"` + role + `"`} {
			if len(frag) > 8 && strings.Contains(string(b), frag) {
				t.Errorf("the cache file holds %.12s… of role %s", frag, role)
			}
		}
	}
	if !strings.Contains(string(b), `"by":"deep"`) || !strings.Contains(string(b), `"dict":"`+DictVersion+`"`) {
		t.Errorf("entries do not say which search made them: %.300s", b)
	}
}

func TestCacheRefusesLinksAndOpenDirs(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	os.Mkdir(real, 0o700)
	link := filepath.Join(base, "link")
	os.Symlink(real, link)
	if _, err := OpenCache(link); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("a linked cache directory: %v", err)
	}
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	if _, err := OpenCache(open); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(open); st.Mode().Perm() != 0o700 {
		t.Errorf("an open cache directory was left %04o", st.Mode().Perm())
	}
	// A damaged verdicts file is lost work, not an error.
	os.WriteFile(filepath.Join(open, verdictsFile), []byte("{not json"), 0o600)
	c, err := OpenCache(open)
	if err != nil || c.Len() != 0 {
		t.Errorf("damaged cache: %v, %d entries", err, c.Len())
	}
}

func TestWordList(t *testing.T) {
	l, err := ParseWordList("words.txt", []byte("alpha\r\nbeta\n\npassword\nalpha\ngamma"))
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 4 { // alpha twice: repeats are tried again
		t.Errorf("words %d", l.Len())
	}
	r := run1(t, Deep(0, l), "x", scramVerifier("beta", 16))
	if r.Verdict != WordList+" words.txt" || r.List != l.ID {
		t.Errorf("word list match: %+v", r)
	}
	for _, c := range []struct{ data, want string }{
		{"ok\nbad\x00word\n", "words.txt:2: a NUL byte (column 4)"},
		{"ok\n" + strings.Repeat("x", 2000) + "\n", "words.txt:2: line longer than"},
		{strings.Repeat("y", 5000), "words.txt:1: line longer than"},
	} {
		_, err := ParseWordList("words.txt", []byte(c.data))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%.10q: %v, want %q", c.data, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "word\n") {
			t.Errorf("the error quotes the word: %v", err)
		}
	}
	if _, err := LoadWordList(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
}

func BenchmarkSCRAMGuess(b *testing.B) {
	v, _ := Parse(scramVerifier("x", 4096))
	for i := 0; i < b.N; i++ {
		v.Matches("r", "guess")
	}
}

func BenchmarkMD5Dictionary(b *testing.B) {
	t := []Target{NewTarget("r", md5Verifier("r", "strong-pw"), 0)}
	s := Default(0)
	s.Workers = 1
	for i := 0; i < b.N; i++ {
		s.Run(context.Background(), t)
	}
}

// BenchmarkCachedAudit20k is the audit's search at 20,000 SCRAM roles
// once every verifier is in the cache: open, answer, save.
func BenchmarkCachedAudit20k(b *testing.B) {
	dir := b.TempDir()
	var targets []Target
	for i := 0; i < 20000; i++ {
		targets = append(targets, NewTarget(fmt.Sprintf("role%05d", i), scramVerifier(fmt.Sprintf("strong-%d-pw", i), 2), 2))
	}
	c, err := OpenCache(dir)
	if err != nil {
		b.Fatal(err)
	}
	s := Default(0)
	s.Cache = c
	s.Run(context.Background(), targets)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := OpenCache(dir)
		if err != nil {
			b.Fatal(err)
		}
		s.Cache = c
		if _, st := s.Run(context.Background(), targets); st.Cached != len(targets) {
			b.Fatalf("%+v", st)
		}
	}
}

// BenchmarkPartialCacheAudit20k: the cache knows every verifier but not
// in full (an earlier run's budget ran out), and there is no time to add
// to it: open, answer, nothing to save.
func BenchmarkPartialCacheAudit20k(b *testing.B) {
	dir := b.TempDir()
	var targets []Target
	for i := 0; i < 20000; i++ {
		targets = append(targets, NewTarget(fmt.Sprintf("role%05d", i), scramVerifier(fmt.Sprintf("strong-%d-pw", i), 2), 2))
	}
	c, err := OpenCache(dir)
	if err != nil {
		b.Fatal(err)
	}
	s := Search{Name: "default", Lists: []*List{ListName}, Cache: c}
	s.Run(context.Background(), targets)
	s = Default(time.Nanosecond)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := OpenCache(dir)
		if err != nil {
			b.Fatal(err)
		}
		s.Cache = c
		if _, st := s.Run(context.Background(), targets); st.Guesses != 0 || st.Incomplete != len(targets) {
			b.Fatalf("%+v", st)
		}
	}
}

// The search holds one batch of a word list at a time, however long the
// list, and a list counts as tried only when every word was tried.
func TestWordListStreamed(t *testing.T) {
	defer func(n int) { batchWords = n; testHookBatch = nil }(batchWords)
	batchWords = 10
	var max int64
	testHookBatch = func(held int64) { max = maxI(max, held) }
	var sb strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&sb, "word-%d\n", i)
	}
	path := filepath.Join(t.TempDir(), "big.txt")
	os.WriteFile(path, []byte(sb.String()+"word-last\n"), 0o600)
	l, err := LoadWordList(path)
	if err != nil || l.Len() != 1001 {
		t.Fatalf("%v, %d words", err, l.Len())
	}
	r := run1(t, Deep(0, l), "x", md5Verifier("x", "word-last"))
	if r.List != l.ID || max == 0 || max > int64(batchWords) {
		t.Errorf("match %+v; %d words held at most (batch %d)", r, max, batchWords)
	}
	// A list that changed since it was checked is not counted as tried.
	os.WriteFile(path, []byte("other\n"), 0o600)
	s := Deep(0, l)
	res, st := s.Run(context.Background(), []Target{NewTarget("x", md5Verifier("x", "nope"), 0)})
	if res[0].Complete || len(st.ListErrors) != 1 || !strings.Contains(st.ListErrors[0], "changed") || st.BudgetSpent {
		t.Errorf("changed list: %+v %+v", res[0], st)
	}
}

func maxI(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// Every directory from the user cache directory down is checked: a link
// or a directory others may write to above the cache would let them
// swap it for theirs.
func TestCacheRefusesUnsafeParents(t *testing.T) {
	for _, c := range []struct {
		name string
		make func(t *testing.T, parent string) bool
		want string
	}{
		{"link", func(t *testing.T, p string) bool {
			real := filepath.Join(filepath.Dir(p), "elsewhere")
			os.Mkdir(real, 0o700)
			return os.Symlink(real, p) == nil
		}, "symbolic link"},
		{"world-writable", func(t *testing.T, p string) bool {
			os.Mkdir(p, 0o700)
			return os.Chmod(p, 0o777) == nil
		}, "others may write"},
		{"another user's", func(t *testing.T, p string) bool {
			os.Mkdir(p, 0o700)
			os.Chmod(p, 0o777)
			return os.Chown(p, 65534, 65534) == nil // needs root
		}, "owned by uid 65534"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			t.Setenv("XDG_CACHE_HOME", root)
			if !c.make(t, filepath.Join(root, "pgaegis")) {
				t.Skip("cannot set the directory up as this user")
			}
			dir, err := DefaultCacheDir()
			if err != nil {
				t.Fatal(err)
			}
			_, err = OpenCache(dir)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), filepath.Join(root, "pgaegis")) {
				t.Errorf("OpenCache: %v, want %q", err, c.want)
			}
			if _, err := os.Lstat(filepath.Join(root, "elsewhere", "passwords")); err == nil {
				t.Errorf("the cache was made through the link")
			}
		})
	}
	// A sound chain is made and used.
	root := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", root)
	dir, _ := DefaultCacheDir()
	if _, err := OpenCache(dir); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(root, "pgaegis")); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("pgaegis directory: %v %v", st, err)
	}
}

// The budget counts from Start, and a word list stops between batches.
func TestWordListBudgetFromStart(t *testing.T) {
	var sb strings.Builder
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&sb, "w%d\n", i)
	}
	l, err := ParseWordList("w.txt", []byte(sb.String()))
	if err != nil {
		t.Fatal(err)
	}
	s := Deep(time.Second, l)
	s.Start = time.Now().Add(-time.Hour)
	res, st := s.Run(context.Background(), []Target{NewTarget("x", scramVerifier("nope-strong", 16), 0)})
	if res[0].Complete || !st.BudgetSpent || st.Guesses != 0 {
		t.Errorf("a budget spent before the search: %+v %+v", res[0], st)
	}
}
