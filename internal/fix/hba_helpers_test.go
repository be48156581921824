package fix_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// audit collects the server with its files (the tests run as root and
// read the data directory) and runs every rule.
func audit(t *testing.T, srv *localpg.Server) (*snapshot.Snapshot, []rules.Finding) {
	t.Helper()
	snap, err := collect.Collect(context.Background(), collect.Options{Conn: srv.ConnConfig("postgres"), DataDir: srv.DataDir, NoProbe: true})
	if err != nil {
		t.Fatal(err)
	}
	return snap, rules.Run(snap)
}

// failing is the set of rule ids with a failing finding, and the failing
// findings of one rule (and its sub-rules) by object.
func failing(findings []rules.Finding) map[string]bool {
	out := map[string]bool{}
	for _, f := range findings {
		if f.Status == rules.Fail && !rules.IsVolatile(f.Rule) {
			out[f.Rule] = true
		}
	}
	return out
}

func failsRule(findings []rules.Finding, rule string) []string {
	var out []string
	for _, f := range findings {
		if f.Status == rules.Fail && f.Rule == rule {
			out = append(out, f.Object)
		}
	}
	return out
}

// applyHBAStep writes the step's new file as the server's OS user would
// have it, reloads, and checks that the server's own parser accepts every
// line and reads each the way ours does.
func applyHBAStep(t *testing.T, srv *localpg.Server, st plan.Step) {
	t.Helper()
	if st.HBA == nil || st.HBA.Content == "" {
		t.Fatalf("step %s has no new file: %s", st.ID, st.Summary)
	}
	fi, err := os.Stat(st.HBA.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WriteFile(st.HBA.Path, st.HBA.Content, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, "SELECT line_number, type, database, user_name, auth_method, error FROM pg_hba_file_rules ORDER BY line_number")
	if err != nil {
		t.Fatal(err)
	}
	var server []string
	for rows.Next() {
		var line int
		var typ, method, errText *string
		var dbs, users []string
		if err := rows.Scan(&line, &typ, &dbs, &users, &method, &errText); err != nil {
			t.Fatal(err)
		}
		if errText != nil {
			t.Errorf("the server refuses line %d of the rewrite: %s\n%s", line, *errText, st.HBA.Content)
			continue
		}
		server = append(server, fmt.Sprintf("%d %s %s %s %s", line, *typ, strings.Join(dbs, ","), strings.Join(users, ","), *method))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	ours := hba.Parse(st.HBA.Path, []byte(st.HBA.Content), hba.Options{Version: 15, SSL: true})
	if len(ours.Errors) > 0 {
		t.Errorf("our parser refuses the rewrite: %v", ours.Errors)
	}
	var mine []string
	for _, r := range ours.Rules {
		mine = append(mine, fmt.Sprintf("%d %s %s %s %s", r.Line, r.Type, tokens(r.Databases), tokens(r.Users), r.Method))
	}
	sort.Strings(server)
	sort.Strings(mine)
	if strings.Join(server, "\n") != strings.Join(mine, "\n") {
		t.Errorf("the server reads the rewrite as\n%s\nour parser as\n%s", strings.Join(server, "\n"), strings.Join(mine, "\n"))
	}
	if _, err := c.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
}

func tokens(ts []hba.Token) string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Value)
	}
	return strings.Join(out, ",")
}
