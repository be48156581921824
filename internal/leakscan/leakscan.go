// Package leakscan looks for secrets where a server keeps statement text:
// the log written since a mark (read through pg_read_binary_file, or a
// local file) and pg_stat_statements. The secrets are searched on the
// client: they are never sent to the server, not even as a parameter
// (log_statement = all logs parameters).
package leakscan

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgaegis/pgaegis/internal/quote"
)

// Mark is where the server's log stood before a change: each current log
// file (stderr, csvlog, jsonlog) and its size.
type Mark struct {
	Files map[string]int64 `json:"files,omitempty"` // path as pg_current_logfile gives it -> size
	Why   string           `json:"why,omitempty"`   // why the log cannot be read ("" when it can)
	// At is the server's clock when the mark was taken: a log file
	// modified since (a rotation) is read from its start.
	At time.Time `json:"at,omitzero"`
}

// Needle is one secret to look for, with a label for the report ("new
// password", "new verifier"). Value never appears in a Result.
type Needle struct {
	Label string
	Value []byte
}

// Hit is one place a needle was found.
type Hit struct {
	Label string // the needle's label
	Where string // "server log /var/log/postgresql/x.log", "pg_stat_statements"
}

// Result says what was searched and what was found.
type Result struct {
	LogChecked        bool
	LogBytes          int64
	LogWhy            string // why the log was not (fully) searched
	StatementsChecked bool
	Statements        int    // pg_stat_statements entries searched
	StatementsWhy     string // why not (extension absent, no privilege)
	Hits              []Hit
}

// chunkSize bounds the memory a scan holds: the log is read this many
// bytes at a time.
const chunkSize = 4 << 20

// The functions reading the log, and who may run them by default.
const (
	fnCurrent = "pg_current_logfile(text)"                        // pg_monitor
	fnList    = "pg_ls_logdir()"                                  // pg_monitor
	fnRead    = "pg_read_binary_file(text,bigint,bigint,boolean)" // superuser
)

// TakeMark records the current log files and sizes (pg_current_logfile,
// and pg_ls_logdir, which pg_monitor may run where pg_stat_file needs a
// grant). Without the privilege it returns a Mark with Why set.
func TakeMark(ctx context.Context, conn *pgx.Conn) (Mark, error) {
	var m Mark
	var (
		user, db, collector, dest string
		num                       int
		can, monitor              []bool
		clock                     time.Time
	)
	fns := []string{fnCurrent, fnList, fnRead}
	err := conn.QueryRow(ctx, `SELECT current_user, current_database(), current_setting('server_version_num')::int,
		current_setting('logging_collector'), current_setting('log_destination'),
		array(SELECT has_function_privilege(f, 'EXECUTE') FROM unnest($1::text[]) WITH ORDINALITY AS u(f, i) ORDER BY i),
		array(SELECT has_function_privilege('pg_monitor', f, 'EXECUTE') FROM unnest($1::text[]) WITH ORDINALITY AS u(f, i) ORDER BY i),
		clock_timestamp()`, fns).
		Scan(&user, &db, &num, &collector, &dest, &can, &monitor, &clock)
	if err != nil {
		return m, fmt.Errorf("leakscan: reading the log settings: %w", err)
	}
	m.At = clock
	if collector != "on" {
		m.Why = fmt.Sprintf("the server log is not readable through the server: logging_collector is off, so the server writes its log (log_destination = '%s') to its standard error, which whatever started it keeps; give that file (--log-file)", dest)
		return m, nil
	}
	if why := missing(user, db, fns, can, monitor); why != "" {
		m.Why = why
		return m, nil
	}
	dests := fileDestinations(dest, num)
	if len(dests) == 0 {
		m.Why = fmt.Sprintf("the server log is not readable through the server: log_destination = '%s' writes no file (syslog and eventlog are not readable back)", dest)
		return m, nil
	}
	rows, err := conn.Query(ctx, `SELECT f, l.size FROM (SELECT DISTINCT pg_current_logfile(d) f FROM unnest($1::text[]) d) c
		LEFT JOIN pg_ls_logdir() l ON l.name = regexp_replace(c.f, '^.*/', '') WHERE f IS NOT NULL`, dests)
	if err != nil {
		return m, fmt.Errorf("leakscan: listing the log files: %w", err)
	}
	m.Files = map[string]int64{}
	for rows.Next() {
		var f string
		var size *int64
		if err := rows.Scan(&f, &size); err != nil {
			return m, fmt.Errorf("leakscan: listing the log files: %w", err)
		}
		if size == nil { // not at the top of log_directory: read from the start
			m.Files[f] = 0
			continue
		}
		m.Files[f] = *size
	}
	if err := rows.Err(); err != nil {
		return m, fmt.Errorf("leakscan: listing the log files: %w", err)
	}
	if len(m.Files) == 0 {
		// The collector has not opened a file yet (just started): nothing
		// to name; Scan lists the directory.
		m.Why = "the server log is not readable through the server: pg_current_logfile() names no file"
	}
	return m, nil
}

// missing says which of fns the role may not execute, and the grant
// that gives each: pg_monitor where it has it (it varies by major:
// pg_current_logfile(text) is pg_monitor's from 16 on), else EXECUTE.
// Function privileges are per database. "" when none is missing.
func missing(user, db string, fns []string, can, monitor []bool) string {
	var lack, viaMonitor, direct []string
	for i, fn := range fns {
		if can[i] {
			continue
		}
		lack = append(lack, fn)
		if monitor[i] {
			viaMonitor = append(viaMonitor, fn)
		} else {
			direct = append(direct, fn)
		}
	}
	if len(lack) == 0 {
		return ""
	}
	var fix []string
	if len(viaMonitor) > 0 {
		fix = append(fix, "GRANT pg_monitor TO "+quote.Ident(user))
	}
	if len(direct) > 0 {
		fix = append(fix, "GRANT EXECUTE ON FUNCTION "+strings.Join(direct, ", ")+" TO "+quote.Ident(user)+" in database "+quote.Ident(db))
	}
	return fmt.Sprintf("the server log is not readable as role %s in database %s: it lacks EXECUTE on %s (%s, as a superuser; or run as a superuser)",
		user, db, strings.Join(lack, ", "), strings.Join(fix, "; "))
}

// fileDestinations are the destinations of log_destination that write a
// file pg_current_logfile names: stderr, csvlog, and jsonlog on 15+.
func fileDestinations(dest string, num int) []string {
	var ds []string
	for _, d := range strings.Split(dest, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		switch {
		case d == "stderr", d == "csvlog", d == "jsonlog" && num >= 150000:
			ds = append(ds, d)
		}
	}
	return ds
}

// Scan searches the log written since m (following a rotation to a new
// file) and pg_stat_statements for each needle.
func Scan(ctx context.Context, conn *pgx.Conn, m Mark, needles []Needle) (*Result, error) {
	return scan(ctx, conn, m, needles, chunkSize)
}

func scan(ctx context.Context, conn *pgx.Conn, m Mark, needles []Needle, chunk int) (*Result, error) {
	r := &Result{}
	f := newFinder(needles)
	if err := scanLog(ctx, conn, m, f, chunk, r); err != nil {
		return nil, err
	}
	if err := scanStatements(ctx, conn, f, r); err != nil {
		return nil, err
	}
	return r, nil
}

// logFile is one file being read: the next offset, and its stream.
type logFile struct {
	path string
	off  int64
	s    stream
}

// barrierWait bounds the wait for the logging collector to write the
// scan's barrier (it writes asynchronously, from a pipe).
const barrierWait = 10 * time.Second

func scanLog(ctx context.Context, conn *pgx.Conn, m Mark, f *finder, chunk int, r *Result) error {
	if m.Why != "" {
		r.LogWhy = m.Why
		return nil
	}
	ndest, err := barrier(ctx, conn, f)
	if err != nil {
		return err
	}
	dirs := map[string]bool{}
	for p := range m.Files {
		dirs[path.Dir(p)] = true
	}
	files := map[string]*logFile{}
	var gone []string
	deadline := time.Now().Add(barrierWait)
	for first := true; ; first = false {
		// The files of the mark from their offsets, and every file of
		// their directory modified since (a rotation's new file) whole.
		// pg_ls_logdir gives whole seconds: a file last written in the
		// mark's second before it is read too (time, never a miss).
		list, err := listLogDir(ctx, conn, m.At)
		if err != nil {
			return err
		}
		if first {
			for p, off := range m.Files {
				e, ok := list[path.Base(p)]
				if !ok {
					gone = append(gone, p)
					continue
				}
				if e.size < off { // truncated (log_truncate_on_rotation): all of it is new
					off = 0
				}
				files[p] = &logFile{path: p, off: off}
			}
		}
		for dir := range dirs {
			for name, e := range list {
				p := path.Join(dir, name)
				if _, ok := files[p]; !ok && e.since {
					files[p] = &logFile{path: p}
				}
			}
		}
		seen := 0
		for _, lf := range files {
			n, err := readServerFile(ctx, conn, lf, list[path.Base(lf.path)].size, f, chunk)
			r.LogBytes += n
			if err != nil {
				return err
			}
			if lf.s.barrier {
				seen++
			}
		}
		if ndest == 0 || seen >= ndest {
			break
		}
		if time.Now().After(deadline) {
			r.LogWhy = fmt.Sprintf("the logging collector had not written this scan's barrier after %s: the newest lines may not have been searched", barrierWait)
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		for _, label := range f.found(&files[p].s) {
			r.Hits = append(r.Hits, Hit{Label: label, Where: "server log " + p})
		}
	}
	r.LogChecked = true
	if len(gone) > 0 {
		sort.Strings(gone)
		r.LogWhy = strings.TrimPrefix(r.LogWhy+"; removed since the mark, not searched: "+strings.Join(gone, ", "), "; ")
	}
	return nil
}

// barrier writes a LOG message with a random token (no secret) and makes
// f look for it: the collector writes what it gets from a pipe, later,
// and a line found after a statement's lines shows they are written.
// It returns how many files the message goes to (its file
// destinations), or 0 when the server would not log it (log_min_messages
// above LOG, no PL/pgSQL): then the scan reads once.
func barrier(ctx context.Context, conn *pgx.Conn, f *finder) (int, error) {
	var dest, level string
	var num int
	var plpgsql bool
	if err := conn.QueryRow(ctx, `SELECT current_setting('log_destination'), current_setting('log_min_messages'),
		current_setting('server_version_num')::int, EXISTS (SELECT FROM pg_language WHERE lanname = 'plpgsql')`).Scan(&dest, &level, &num, &plpgsql); err != nil {
		return 0, fmt.Errorf("leakscan: reading the log settings: %w", err)
	}
	if !plpgsql || strings.HasPrefix(level, "fatal") || strings.HasPrefix(level, "panic") {
		return 0, nil
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return 0, err
	}
	token := hex.EncodeToString(b)
	// The message is "leakscan barrier TOKEN"; the statement (logged too
	// under log_statement) never spells it so.
	if _, err := conn.Exec(ctx, "DO $leakscan$BEGIN RAISE LOG 'leakscan barrier %', '"+token+"'; END$leakscan$"); err != nil {
		return 0, fmt.Errorf("leakscan: writing the barrier: %w", err)
	}
	f.withBarrier([]byte("leakscan barrier " + token))
	return len(fileDestinations(dest, num)), nil
}

type dirEntry struct {
	size  int64
	since bool // modified in the mark's second or later
}

func listLogDir(ctx context.Context, conn *pgx.Conn, at time.Time) (map[string]dirEntry, error) {
	rows, err := conn.Query(ctx, "SELECT name, size, modification >= date_trunc('second', $1::timestamptz) FROM pg_ls_logdir()", at)
	if err != nil {
		return nil, fmt.Errorf("leakscan: listing the log directory: %w", err)
	}
	list := map[string]dirEntry{}
	for rows.Next() {
		var name string
		var e dirEntry
		if err := rows.Scan(&name, &e.size, &e.since); err != nil {
			return nil, fmt.Errorf("leakscan: listing the log directory: %w", err)
		}
		list[name] = e
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("leakscan: listing the log directory: %w", err)
	}
	return list, nil
}

// readServerFile feeds lf from its offset to size to f in chunks through
// pg_read_binary_file.
func readServerFile(ctx context.Context, conn *pgx.Conn, lf *logFile, size int64, f *finder, chunk int) (int64, error) {
	var n int64
	for lf.off < size {
		want := min(int64(chunk), size-lf.off)
		var b []byte
		if err := conn.QueryRow(ctx, "SELECT pg_read_binary_file($1, $2, $3, true)", lf.path, lf.off, want).Scan(&b); err != nil {
			return n, fmt.Errorf("leakscan: reading %s at %d: %w", lf.path, lf.off, err)
		}
		if len(b) == 0 { // removed, or shorter than listed
			break
		}
		f.feed(&lf.s, b)
		n += int64(len(b))
		lf.off += int64(len(b))
	}
	return n, nil
}

// ScanFile searches a local log file (the server's standard error, say)
// from offset for each needle; a file shorter than offset was truncated
// or replaced and is searched whole. It does not follow a rotation.
func ScanFile(path string, offset int64, needles []Needle) (*Result, error) {
	return scanFile(path, offset, needles, chunkSize)
}

func scanFile(name string, offset int64, needles []Needle, chunk int) (*Result, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("leakscan: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("leakscan: %w", err)
	}
	if st.Size() < offset {
		offset = 0
	}
	if _, err := fh.Seek(offset, io.SeekStart); err != nil {
		return nil, fmt.Errorf("leakscan: %s: %w", name, err)
	}
	f := newFinder(needles)
	r := &Result{LogChecked: true}
	buf := make([]byte, chunk)
	var s stream
	for {
		n, err := io.ReadFull(fh, buf)
		if n > 0 {
			f.feed(&s, buf[:n])
			r.LogBytes += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("leakscan: reading %s: %w", name, err)
		}
	}
	for _, label := range f.found(&s) {
		r.Hits = append(r.Hits, Hit{Label: label, Where: "log file " + name})
	}
	return r, nil
}

// scanStatements searches the texts pg_stat_statements keeps in the
// connection's database. Only entries that mention a password or SCRAM
// are fetched (the filter holds no secret).
func scanStatements(ctx context.Context, conn *pgx.Conn, f *finder, r *Result) error {
	var schema, user string
	var loaded, allStats bool
	err := conn.QueryRow(ctx, `SELECT coalesce((SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'), ''),
		EXISTS (SELECT FROM pg_settings WHERE name = 'pg_stat_statements.max'),
		current_user, pg_has_role('pg_read_all_stats', 'USAGE')`).Scan(&schema, &loaded, &user, &allStats)
	if err != nil {
		return fmt.Errorf("leakscan: looking for pg_stat_statements: %w", err)
	}
	db := conn.Config().Database
	switch {
	case !loaded && schema == "":
		r.StatementsWhy = "pg_stat_statements is not loaded (shared_preload_libraries): it keeps no statements"
		return nil
	case !loaded:
		r.StatementsWhy = fmt.Sprintf("pg_stat_statements is installed in database %s but not loaded (shared_preload_libraries): it keeps no statements", db)
		return nil
	case schema == "":
		r.StatementsWhy = fmt.Sprintf("pg_stat_statements is loaded but not installed in database %s, so its statements (of every database) cannot be read: CREATE EXTENSION pg_stat_statements there", db)
		return nil
	}
	rows, err := conn.Query(ctx, "SELECT query FROM "+quote.Ident(schema)+".pg_stat_statements WHERE query ~* 'password|scram'")
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42501" {
			r.StatementsWhy = fmt.Sprintf("pg_stat_statements cannot be read as role %s: %s (GRANT SELECT ON %s.pg_stat_statements TO %s)", user, pe.Message, quote.Ident(schema), quote.Ident(user))
			return nil
		}
		return fmt.Errorf("leakscan: reading pg_stat_statements: %w", err)
	}
	var s stream
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			return fmt.Errorf("leakscan: reading pg_stat_statements: %w", err)
		}
		r.Statements++
		f.whole(&s, []byte(q))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("leakscan: reading pg_stat_statements: %w", err)
	}
	r.StatementsChecked = true
	if !allStats {
		r.StatementsWhy = fmt.Sprintf("only role %s's own statements were searched: the others' texts are hidden without pg_read_all_stats (GRANT pg_read_all_stats TO %s)", user, quote.Ident(user))
	}
	for _, label := range f.found(&s) {
		r.Hits = append(r.Hits, Hit{Label: label, Where: "pg_stat_statements"})
	}
	return nil
}
