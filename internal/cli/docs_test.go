package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// A documented example is any line in a fenced block (other than yaml or
// json) that starts with "pgaegis ", "$ pgaegis " or "go run ./cmd/pgaegis ".
// "a && b" is two examples; "# ..." comments and "> file" redirections are
// dropped. Examples that name a host, a path or a service that is not
// here (externalRE) are parsed through the command tree only: the
// command and every flag must exist. The others run, in a temporary
// directory holding the files they name, against a throwaway server
// reached through PG* variables; they must exit 0 or 1 (1 = findings).
type example struct {
	where string // file:line
	args  []string
}

var externalRE = regexp.MustCompile(`db\.example\.com|\bdb1\b|@db/|/var/|/etc/|127\.0\.0\.1:9000|\bwatch\b|firewall (confirm|rollback)|firewall .*--apply`)

func docExamples(t *testing.T) []example {
	t.Helper()
	files, _ := filepath.Glob("../../docs/*.md")
	files = append([]string{"../../README.md"}, files...)
	var out []example
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		in, skip, n := false, false, 0
		for sc.Scan() {
			n++
			l := sc.Text()
			if strings.HasPrefix(l, "```") {
				lang := strings.TrimPrefix(l, "```")
				in, skip = !in, lang == "yaml" || lang == "json"
				continue
			}
			if !in || skip {
				continue
			}
			l = strings.TrimPrefix(l, "$ ")
			l = strings.Replace(l, "go run ./cmd/pgaegis ", "pgaegis ", 1)
			if !strings.HasPrefix(l, "pgaegis ") {
				continue
			}
			words, err := shellWords(l)
			if err != nil {
				t.Errorf("%s:%d: %v", f, n, err)
				continue
			}
			for _, cmd := range splitCommands(words) {
				if len(cmd) > 0 && cmd[0] == "pgaegis" {
					out = append(out, example{fmt.Sprintf("%s:%d", strings.TrimPrefix(f, "../../"), n), cmd[1:]})
				}
			}
		}
		fh.Close()
	}
	return out
}

// shellWords splits a line as sh would for the simple lines docs hold:
// quotes, backslashes, comments and the && | > operators (as words).
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	have := false
	flush := func() {
		if have {
			words = append(words, cur.String())
		}
		cur.Reset()
		have = false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			flush()
		case c == '#' && !have:
			flush()
			return words, nil
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			have, i = true, i+1+j
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated quote")
			}
			have = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			have = true
		case c == '&' && i+1 < len(s) && s[i+1] == '&':
			flush()
			words = append(words, "&&")
			i++
		case c == '|' || c == '>':
			flush()
			words = append(words, string(c))
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	flush()
	return words, nil
}

// splitCommands cuts words at && and |, and drops "> file".
func splitCommands(words []string) [][]string {
	var out [][]string
	var cur []string
	for i := 0; i < len(words); i++ {
		switch words[i] {
		case "&&", "|":
			out, cur = append(out, cur), nil
		case ">":
			i++ // the file
		default:
			cur = append(cur, words[i])
		}
	}
	return append(out, cur)
}

// dryParse finds the command and parses its flags and arguments without
// running it: an unknown command, flag or flag value fails.
func dryParse(args []string) error {
	root := newRoot(&Env{Stdout: io.Discard, Stderr: io.Discard})
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	cmd, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	if err := cmd.ParseFlags(rest); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil // --help on a command that does not define it (cobra adds it when run)
		}
		return err
	}
	pos := cmd.Flags().Args()
	if cmd.Args != nil {
		if err := cmd.Args(cmd, pos); err != nil {
			return err
		}
	} else if cmd.HasSubCommands() && len(pos) > 0 {
		return fmt.Errorf("unknown %s subcommand %q", cmd.Name(), pos[0])
	}
	if cmd == root && !root.Flags().Changed("version") {
		return fmt.Errorf("no command")
	}
	return nil
}

// TestHelpExamplesParse: the Example: lines of every command's help parse.
func TestHelpExamplesParse(t *testing.T) {
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, l := range strings.Split(c.Example, "\n") {
			l = strings.TrimSpace(l)
			if i := strings.Index(l, "pgaegis "); i >= 0 {
				l = l[i:]
			} else {
				continue
			}
			words, err := shellWords(l)
			if err != nil {
				t.Errorf("%s example %q: %v", c.CommandPath(), l, err)
				continue
			}
			for _, w := range splitCommands(words) {
				if len(w) == 0 || w[0] != "pgaegis" {
					continue
				}
				n++
				if err := dryParse(w[1:]); err != nil {
					t.Errorf("%s example %q: %v", c.CommandPath(), l, err)
				}
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRoot(&Env{Stdout: io.Discard, Stderr: io.Discard}))
	if n < 40 {
		t.Errorf("only %d examples in the help", n)
	}
}

// TestDocExamples runs (or, where they need a host that is not here,
// parses) every example in README.md and docs/*.md.
func TestDocExamples(t *testing.T) {
	exs := docExamples(t)
	if len(exs) < 40 {
		t.Fatalf("only %d examples found: the extraction is broken", len(exs))
	}
	var run []example
	for _, e := range exs {
		if err := dryParse(e.args); err != nil {
			t.Errorf("%s: pgaegis %s: %v", e.where, strings.Join(e.args, " "), err)
			continue
		}
		if !externalRE.MatchString(strings.Join(e.args, " ")) {
			run = append(run, e)
		}
	}
	if testing.Short() {
		return
	}
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, "CREATE ROLE app LOGIN", "CREATE ROLE jane LOGIN", "CREATE ROLE app_rw", "CREATE ROLE app_ro",
		"CREATE ROLE boss SUPERUSER NOLOGIN", "CREATE ROLE dev LOGIN IN ROLE boss",
		"CREATE SCHEMA shop", "CREATE TABLE shop.orders (id int)", "CREATE TABLE shop.secrets (id int, pin text)",
		"CREATE SCHEMA app", "CREATE TABLE app.orders (id int)", "GRANT USAGE ON SCHEMA shop TO app", "GRANT SELECT ON shop.orders TO app",
		"CREATE DATABASE shop"); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"PGHOST": "127.0.0.1", "PGPORT": fmt.Sprint(srv.Port), "PGUSER": srv.AdminUser,
		"PGPASSWORD": srv.Password, "PGDATABASE": "postgres", "PGSSLMODE": "disable"} {
		t.Setenv(k, v)
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("XDG_STATE_HOME", dir) // the fleet commands' default store
	hba := "local all all peer\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all 10.0.0.0/8 scram-sha-256\n"
	wide := hba + "host all all 0.0.0.0/0 trust\n"
	var logLines strings.Builder
	for i := 0; i < 12; i++ {
		fmt.Fprintf(&logLines, "2026-11-22 08:00:%02d.000 UTC [%d] app@shop 203.0.113.9(5000) FATAL:  password authentication failed for user \"app\"\n", i, 100+i)
	}
	csv := `2026-11-22 08:00:00.000 UTC,"app","shop",100,"203.0.113.9:5000",6560a000.64,1,"authentication",2026-11-22 08:00:00 UTC,3/1,0,FATAL,28P01,"password authentication failed for user ""app""",,,,,,,,,"","client backend",,0` + "\n"
	for name, content := range map[string]string{
		"pg_hba.conf": hba, "old.conf": hba, "new.conf": wide, "old/pg_hba.conf": hba, "new/pg_hba.conf": wide, "new_pg_hba.conf": hba,
		"postgresql.conf": "listen_addresses = 'localhost'\nssl = off\n", "postgresql.log": logLines.String(), "postgresql.csv": csv,
		"policy.yaml": yamlBlock(t, filepath.Join(repo, "docs/access.md"), "policy.yaml"), "waivers.yaml": yamlBlock(t, filepath.Join(repo, "README.md"), "waivers:"),
		"app.pw":     "doc-example-password\n",
		"fleet.yaml": yamlBlock(t, filepath.Join(repo, "docs/fleet.md"), "# fleet.yaml"),
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The baseline examples need an earlier report.
	if code, _, errs := runCLI(t, "audit", "--format", "json", "-o", "last.json", "--password-check-budget", "0"); code > ExitFindings {
		t.Fatalf("the baseline report: exit %d: %s", code, errs)
	}
	for _, e := range run {
		code, _, errs := runCLI(t, e.args...)
		// access check answers "not directly, but through escalation"
		// with its own code, as the example shows.
		if code > ExitFindings && !(code == ExitReach && len(e.args) > 1 && e.args[0] == "access" && e.args[1] == "check") {
			t.Errorf("%s: pgaegis %s: exit %d:\n%s", e.where, strings.Join(e.args, " "), code, errs)
		}
	}
	t.Logf("%d examples parsed, %d of them run", len(exs), len(run))
}

// yamlBlock returns the ```yaml block of a Markdown file that contains mark.
func yamlBlock(t *testing.T, file, mark string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range strings.Split(string(b), "```yaml\n")[1:] {
		block := part[:strings.Index(part, "```")]
		if strings.Contains(block, mark) {
			return block
		}
	}
	t.Fatalf("%s: no yaml block with %q", file, mark)
	return ""
}
