package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// TestRestoreIntoAnotherName is the new-user trial's case: createdb
// hr_copy; restore SET -d hr_copy --database hr --clean fills hr_copy and
// leaves the live hr alone, and says so before writing.
// ORACLE: the server counts the rows of both databases afterwards.
func TestRestoreIntoAnotherName(t *testing.T) {
	for _, p := range []string{"age-keygen", "zstd"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not installed: %v", p, err)
		}
	}
	if _, err := os.Stat("/usr/lib/postgresql/15/bin/pg_dump"); err != nil {
		t.Skipf("no PostgreSQL 15 client programs: %v", err)
	}
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, "CREATE DATABASE hr"); err != nil {
		t.Fatal(err)
	}
	if err := srv.ExecIn(ctx, "hr", "CREATE TABLE staff (id int)", "INSERT INTO staff SELECT generate_series(1, 10)"); err != nil {
		t.Fatal(err)
	}
	id, rec := backupKey(t, t.TempDir(), "k")
	t.Setenv("PGPASSWORD", srv.Password)
	conn := func(db string) []string {
		return []string{"-d", fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=prefer", srv.Port, srv.AdminUser, db)}
	}
	code, out, errs := runCLI(t, append([]string{"backup", "--all", "--recipients", rec, "--out", t.TempDir(), "--format", "json"}, conn("postgres")...)...)
	if code != ExitOK {
		t.Fatalf("backup --all: exit %d: %s%s", code, out, errs)
	}
	var res struct {
		Dir string `json:"dir"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if err := srv.Exec(ctx, "CREATE DATABASE hr_copy"); err != nil {
		t.Fatal(err)
	}
	if err := srv.ExecIn(ctx, "hr", "INSERT INTO staff VALUES (11)"); err != nil {
		t.Fatal(err)
	}
	// Several databases, no --create, no --database: refused up front.
	code, out, errs = runCLI(t, append([]string{"restore", res.Dir, "--identity", id, "--clean"}, conn("hr_copy")...)...)
	if code != ExitError || out != "" || !strings.Contains(errs, "--create") || !strings.Contains(errs, "--database NAME") {
		t.Fatalf("restore of an --all set without --create: exit %d: %q %q", code, out, errs)
	}
	code, out, errs = runCLI(t, append([]string{"restore", res.Dir, "--identity", id, "--database", "hr", "--clean"}, conn("hr_copy")...)...)
	want := fmt.Sprintf(`restoring "hr" (from the set) into "hr_copy" on 127.0.0.1:%d`, srv.Port)
	if code != ExitOK || !strings.HasPrefix(out, want+"\n") || !strings.Contains(out, `database "hr": restored into "hr_copy"`) {
		t.Fatalf("restore --database hr -d hr_copy: exit %d: %s%s\nwant it to start with %q", code, out, errs, want)
	}
	for db, n := range map[string]int64{"hr_copy": 10, "hr": 11} {
		c, err := srv.Connect(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		var got int64
		if err := c.QueryRow(ctx, "SELECT count(*) FROM staff").Scan(&got); err != nil || got != n {
			t.Errorf("%s.staff: %d rows (%v), want %d", db, got, err, n)
		}
		c.Close(ctx)
	}
}
