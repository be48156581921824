package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/pgaegis/pgaegis/internal/backupset"
	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgclient"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/sealedfile"
)

// feed decrypts the sealed file at path into cmd's stdin and waits for
// it. The last buffer is held back until the ciphertext's sha256 is
// known: on a mismatch cmd is killed before its stdin is closed, so a
// --single-transaction restore never reaches its COMMIT.
func feed(path string, ids []age.Identity, want string, cmd *exec.Cmd) error {
	return feedThrough(path, ids, want, cmd, nil)
}

// streamFilter rewrites a stream on its way to a program; Flush is called
// once the whole (hash-checked) input has been written.
type streamFilter interface {
	io.Writer
	Flush() error
	Err() error // the filter's own failure, as opposed to the program's
}

// feedThrough is feed with the plaintext passed through the filter made
// by wrap (nil: none) before cmd's stdin.
func feedThrough(path string, ids []age.Identity, want string, cmd *exec.Cmd, wrap func(io.Writer) streamFilter) error {
	r, err := sealedfile.Open(path, ids)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		r.Close()
		return err
	}
	stderr, _ := cmd.Stderr.(*tailKeep)
	if stderr == nil {
		stderr = &tailKeep{n: 4096}
		cmd.Stderr = stderr
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		r.Close()
		return fmt.Errorf("%s: %w", filepath.Base(cmd.Path), err)
	}
	var out io.Writer = stdin
	var filt streamFilter
	if wrap != nil {
		filt = wrap(stdin)
		out = filt
	}
	var pending []byte
	var werr, rerr error
	bufs := [2][]byte{make([]byte, 1<<20), make([]byte, 1<<20)}
	for i := 0; ; i++ {
		b := bufs[i%2]
		n, err := io.ReadFull(r, b)
		if n > 0 {
			// A program that stops reading early (a --section run) is
			// judged by its exit status; the file is still read to its end.
			if pending != nil && werr == nil {
				_, werr = out.Write(pending)
			}
			pending = b[:n]
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			rerr = err
			break
		}
	}
	st, cerr := r.Close()
	if rerr == nil {
		rerr = cerr
	}
	if rerr == nil && st.SHA256 != want {
		rerr = fmt.Errorf("sha256 %s, the manifest says %s", st.SHA256, want)
	}
	if rerr == nil && pending != nil && werr == nil {
		_, werr = out.Write(pending)
	}
	if rerr == nil && filt != nil && werr == nil {
		werr = filt.Flush()
	}
	if rerr == nil && filt != nil && filt.Err() != nil {
		rerr = filt.Err()
	}
	if rerr != nil {
		cmd.Process.Kill()
		stdin.Close()
		cmd.Wait()
		return fmt.Errorf("%s: %w (%s was stopped before the end of its input)", filepath.Base(path), rerr, filepath.Base(cmd.Path))
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%s < %s: %v: %s", filepath.Base(cmd.Path), filepath.Base(path), err, strings.TrimSpace(string(stderr.buf)))
	}
	return nil
}

// psqlErrors are psql's ERROR lines other than "already exists" ones
// (a role or tablespace the target has already).
func psqlErrors(stderr string) []string {
	var bad []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "ERROR:") && !strings.Contains(l, "already exists") {
			bad = append(bad, strings.TrimSpace(l))
		}
	}
	return bad
}

// runGlobals feeds the globals script to psql (ON_ERROR_STOP=0: a role
// that exists already is not a failure; any other error is).
// The role psql connects as (t's user) keeps its password and login
// attributes (roleGuard).
func runGlobals(ctx context.Context, dir string, f backupset.File, ids []age.Identity, t pgclient.Target, psql pgclient.Tool) error {
	_, err := runGlobalsAs(ctx, dir, f, ids, t, psql, "postgres", t.Flags.User)
	return err
}

// runGlobalsAs runs the globals script connected to database db ("" =
// the target's own) as role (the session user, whose ALTER ROLE the
// guard rewrites); kept says what the guard left out ("" = nothing).
func runGlobalsAs(ctx context.Context, dir string, f backupset.File, ids []age.Identity, t pgclient.Target, psql pgclient.Tool, db, role string) (kept string, err error) {
	cmd, closer, err := t.Command(ctx, psql, db, "-X", "-q", "-v", "ON_ERROR_STOP=0", "-f", "-")
	if err != nil {
		return "", err
	}
	defer closer()
	stderr := &tailKeep{n: 1 << 20}
	cmd.Stderr = stderr
	cmd.Stdout = io.Discard
	var g *roleGuard
	wrap := func(w io.Writer) streamFilter { g = newRoleGuard(w, role); return g }
	if role == "" {
		wrap = nil
	}
	if err := feedThrough(filepath.Join(dir, f.Name), ids, f.SHA256, cmd, wrap); err != nil {
		return "", err
	}
	if g != nil {
		kept = g.kept()
	}
	if bad := psqlErrors(string(stderr.buf)); len(bad) > 0 {
		return kept, fmt.Errorf("globals: %s", strings.Join(bad, "; "))
	}
	return kept, nil
}

// restoreSteps is the order pg_restore runs on a database's files: one
// archive whole; a parallel dump's schema part around its data parts.
type restoreStep struct {
	part int
	args []string
}

func restoreSteps(d backupset.Database) []restoreStep {
	if len(d.Files) <= 1 {
		return []restoreStep{{0, nil}}
	}
	s := []restoreStep{{0, []string{"--section=pre-data"}}}
	for i := 1; i < len(d.Files); i++ {
		s = append(s, restoreStep{i, []string{"--section=data"}})
	}
	return append(s, restoreStep{0, []string{"--section=data"}}, restoreStep{0, []string{"--section=post-data"}})
}

// restoreDatabase streams d's files into pg_restore against t.
func restoreDatabase(ctx context.Context, dir string, d backupset.Database, ids []age.Identity, t pgclient.Target, tool pgclient.Tool, extra []string) error {
	return restoreDatabaseInto(ctx, dir, d, d.Name, ids, t, tool, extra)
}

// restoreDatabaseInto streams d's files into pg_restore against t's
// database into.
func restoreDatabaseInto(ctx context.Context, dir string, d backupset.Database, into string, ids []age.Identity, t pgclient.Target, tool pgclient.Tool, extra []string) error {
	for _, st := range restoreSteps(d) {
		f := d.Files[st.part]
		args := append([]string{"--exit-on-error", "--single-transaction"}, extra...)
		args = append(args, st.args...)
		cmd, closer, err := t.Command(ctx, tool, into, args...)
		if err != nil {
			return err
		}
		err = feed(filepath.Join(dir, f.Name), ids, f.SHA256, cmd)
		closer()
		if err != nil {
			return fmt.Errorf("database %q: %w", d.Name, err)
		}
	}
	return nil
}

// restoreTest restores the set into a throwaway server of the dump's
// major and compares count(*) per table with the manifest.
func restoreTest(ctx context.Context, dir string, m *backupset.Manifest, ids []age.Identity, binDir string) (*backupset.RestoreTest, error) {
	start := time.Now()
	major := m.Server.VersionNum / 10000
	dumpMajor := major
	if _, mj, err := pgclient.ParseVersion("pg_dump (PostgreSQL) " + m.PgDump.Version); err == nil {
		dumpMajor = mj
	}
	pgRestore, err := pgclient.Find("pg_restore", dumpMajor)
	if err != nil {
		return nil, err
	}
	psql, err := pgclient.Find("psql", dumpMajor)
	if err != nil {
		return nil, err
	}
	// Not "postgres": pg_dumpall's ALTER ROLE postgres must not hit the admin.
	srv, err := localpg.Start(ctx, localpg.Options{BinDir: binDir, Version: strconv.Itoa(major), AdminUser: "pgaegis_restore_test"})
	if err != nil {
		return nil, fmt.Errorf("throwaway server: %w", err)
	}
	defer srv.Stop()
	rt := &backupset.RestoreTest{At: time.Now().UTC(), ServerVersion: srv.Version, PgRestore: backupset.Tool{Path: pgRestore.Path, Version: pgRestore.Version}}
	t := pgclient.Target{
		Flags:  conninfo.Flags{Host: "127.0.0.1", Port: strconv.Itoa(srv.Port), User: srv.AdminUser},
		Config: srv.ConnConfig("postgres"),
	}
	var extra []string
	if m.Globals != nil {
		if err := runGlobals(ctx, dir, *m.Globals, ids, t, psql); err != nil {
			return rt, err
		}
	} else {
		extra = []string{"--no-owner", "--no-privileges"}
	}
	for _, d := range m.Databases {
		// The throwaway server is empty but for its own postgres database,
		// which an --all set holds too: it is dropped (from template1) so
		// the dump's database is restored into a fresh one either way.
		if err := srv.ExecIn(ctx, "template1", "DROP DATABASE IF EXISTS "+quote.Ident(d.Name), "CREATE DATABASE "+quote.Ident(d.Name)+" TEMPLATE template0"); err != nil {
			return rt, fmt.Errorf("database %q: %w", d.Name, err)
		}
		if err := restoreDatabase(ctx, dir, d, ids, t, pgRestore, extra); err != nil {
			return rt, err
		}
		c, err := srv.Connect(ctx, d.Name)
		if err != nil {
			return rt, err
		}
		for _, tb := range d.Tables {
			var n int64
			q := "SELECT count(*) FROM ONLY " + quote.Ident(tb.Schema) + "." + quote.Ident(tb.Name)
			if err := c.QueryRow(ctx, q).Scan(&n); err != nil {
				rt.Mismatches = append(rt.Mismatches, fmt.Sprintf("%s.%s: dump %d rows, restored: %v", tb.Schema, tb.Name, tb.Rows, err))
				continue
			}
			rt.Tables++
			if n != tb.Rows {
				rt.Mismatches = append(rt.Mismatches, fmt.Sprintf("%s.%s: dump %d rows, restored %d", tb.Schema, tb.Name, tb.Rows, n))
			}
		}
		c.Close(ctx)
	}
	rt.Seconds = time.Since(start).Seconds()
	if len(rt.Mismatches) > 0 {
		return rt, errors.New("restored row counts differ from the dump: " + strings.Join(rt.Mismatches, "; "))
	}
	return rt, nil
}

// psqlCommand runs one statement with psql against t's database db.
func psqlCommand(ctx context.Context, t pgclient.Target, psql pgclient.Tool, db, sql string) error {
	cmd, closer, err := t.Command(ctx, psql, db, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql)
	if err != nil {
		return err
	}
	defer closer()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", sql, err, strings.TrimSpace(string(out)))
	}
	return nil
}
