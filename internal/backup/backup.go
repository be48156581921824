// Package backup is pgaegis's backup flow: dump a server through
// pg_dump into a sealed backup set (Backup), prove a set (Verify, with a
// restore into a throwaway server), bring one back (Restore), re-encrypt
// one to new recipients (Rekey) and apply retention (Prune).
//
// Every fault (a stage's exit status, an incomplete archive, a wrong
// identity, a hash or MAC that does not match, a row count that differs)
// is a *Fault, which the CLI turns into exit status 2.
package backup

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/agekeys"
	"github.com/pgaegis/pgaegis/internal/backupset"
	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/pgarchive"
	"github.com/pgaegis/pgaegis/internal/pgclient"
	"github.com/pgaegis/pgaegis/internal/sealedfile"
)

// Fault is a backup that failed or a set that did not prove itself.
type Fault struct {
	Set     string // set directory, when known
	Problem string // what was wrong, for the user
	Err     error
}

func (f *Fault) Error() string {
	s := f.Problem
	if f.Set != "" {
		s = f.Set + ": " + s
	}
	return s
}
func (f *Fault) Unwrap() error { return f.Err }

// Progress receives one line per stage (nil: silent).
type Progress func(format string, args ...any)

// Options for Backup.
type Options struct {
	Target        pgclient.Target
	Recipients    []agekeys.Recipient
	Out           string   // backup root; the set is Out/NAME-YYYYMMDDTHHMMSSZ
	Name          string   // set name prefix; default the target's host (or "local")
	Databases     []string // empty with !All: the target's database
	All           bool     // every connectable database except templates, plus globals
	Globals       bool     // globals (roles, tablespaces) even without All
	WithPasswords bool     // include roles' password verifiers in globals
	Jobs          int      // >1: parallel dump (see parallel.go)
	Level         int      // zstd level (sealedfile.Options.Level)
	Progress      Progress
	Now           func() time.Time // for tests; time.Now when nil
}

// Result is a finished backup.
type Result struct {
	Dir      string
	Manifest *backupset.Manifest
}

// GlobalsComplete is how pg_dumpall's script ends (pg_dumpall.c writes
// this comment last, also with --globals-only; checked against 15.18's
// output): a globals script without it stopped short, whatever the exit
// status said.
const GlobalsComplete = "--\n-- PostgreSQL database cluster dump complete\n--\n\n"

// copyBuffer is the size of one read from pg_dump's stdout and of the
// buffers queued between it and the parser and the sealer; pipeDepth is
// how many are in flight, so a moment's stall in zstd or on the disk is
// absorbed without pg_dump ever blocking on a full pipe.
const (
	copyBuffer = 1 << 20
	pipeDepth  = 8
)

// stderrKeep bounds what is kept of a child's stderr (its tail: the
// error that ended it comes last).
const stderrKeep = 8 << 10

// startHook, when set (tests), sees every child right after it started.
var startHook func(*exec.Cmd)

// byteHook, when set (tests), is told how many bytes of a child's
// output have passed, in step with the sealer (so what it does to the
// child happens mid-stream, never after the child could have finished a
// dump larger than the queues between them).
var byteHook func(cmd *exec.Cmd, n int64)

// findTool and command are pgclient's; tests may stand in for them while
// pgclient is not there yet.
var (
	findTool = pgclient.Find
	command  = func(ctx context.Context, t pgclient.Target, tool pgclient.Tool, database string, args ...string) (*exec.Cmd, func(), error) {
		return t.Command(ctx, tool, database, args...)
	}
)

// run is one Backup in progress.
type run struct {
	o       Options
	cfg     *pgx.ConnConfig
	secrets []string
	key     [sealedfile.KeySize]byte
	sealOpt sealedfile.Options
	dir     string
	pgDump  pgclient.Tool
}

// Backup dumps and seals; the set directory holds nothing but sealed
// files and the manifest, written last. On any fault the set directory is
// removed and a *Fault returned.
func Backup(ctx context.Context, o Options) (*Result, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	started := now().UTC()
	if len(o.Recipients) == 0 {
		return nil, errors.New("backup: no recipients: a backup is sealed to at least one age recipient")
	}
	if o.Out == "" {
		return nil, errors.New("backup: no output directory")
	}
	if o.Target.Config == nil {
		return nil, errors.New("backup: no connection")
	}
	r := &run{o: o, cfg: o.Target.Config.Copy()}
	r.secrets = conninfo.Secrets(r.cfg)

	info, err := r.inspect(ctx)
	if err != nil {
		return nil, err
	}
	major := info.server.VersionNum / 10000
	if r.pgDump, err = findTool("pg_dump", major); err != nil {
		return nil, &Fault{Problem: err.Error(), Err: err}
	}
	withGlobals := o.All || o.Globals
	var pgDumpall pgclient.Tool
	if withGlobals {
		if pgDumpall, err = findTool("pg_dumpall", major); err != nil {
			return nil, &Fault{Problem: err.Error(), Err: err}
		}
	}

	if _, err := rand.Read(r.key[:]); err != nil {
		return nil, fmt.Errorf("backup: random key: %w", err)
	}
	recips := make([]age.Recipient, len(o.Recipients))
	public := make([]string, len(o.Recipients))
	for i, rc := range o.Recipients {
		recips[i] = rc.Recipient
		public[i] = rc.Public
	}
	r.sealOpt = sealedfile.Options{Recipients: recips, Key: r.key, Level: o.Level}

	name := o.Name
	if name == "" {
		name = defaultName(r.cfg.Host)
	}
	name = safeName(name)
	setName := name + "-" + started.Format("20060102T150405Z")
	if err := os.MkdirAll(o.Out, 0o700); err != nil {
		return nil, fmt.Errorf("backup: %v", err)
	}
	r.dir = filepath.Join(o.Out, setName)
	if err := os.Mkdir(r.dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			// Not ours: Set stays empty so nobody calls it a leftover.
			return nil, &Fault{Problem: r.dir + ": a backup set of that name already exists (another backup with the same --name started in the same second?)", Err: err}
		}
		return nil, fmt.Errorf("backup: %v", err)
	}
	// Held until the manifest is written (or the set removed): prune
	// leaves a set alone while its lock is taken.
	lock, err := backupset.Lock(r.dir)
	if err != nil {
		os.Remove(r.dir)
		return nil, fmt.Errorf("backup: %v", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(r.dir)
		}
		lock.Close()
	}()

	m := &backupset.Manifest{
		Format:        backupset.Format,
		Name:          setName,
		Started:       started,
		Server:        info.server,
		PgDump:        backupset.Tool{Path: r.pgDump.Path, Version: r.pgDump.Version},
		Compression:   "zstd",
		Encryption:    "age",
		Recipients:    public,
		WithPasswords: withGlobals && o.WithPasswords,
	}
	if o.Jobs > 1 {
		m.Jobs = o.Jobs
	}

	if withGlobals {
		f, err := r.globals(ctx, pgDumpall)
		if err != nil {
			return nil, r.fault(err)
		}
		m.Globals = f
	}
	for _, db := range info.databases {
		var d *backupset.Database
		if o.Jobs > 1 {
			d, err = r.dumpParallel(ctx, db)
		} else {
			d, err = r.dumpDatabase(ctx, db)
		}
		if err != nil {
			return nil, r.fault(err)
		}
		m.Databases = append(m.Databases, *d)
	}
	if err := ctx.Err(); err != nil {
		return nil, r.fault(err)
	}
	m.Finished = now().UTC()
	m.Sign(r.key)
	if err := backupset.WriteManifest(r.dir, m); err != nil {
		return nil, r.fault(fmt.Errorf("writing the manifest: %w", err))
	}
	ok = true
	return &Result{Dir: r.dir, Manifest: m}, nil
}

// fault makes err the backup's *Fault (the set is removed by Backup).
func (r *run) fault(err error) error {
	var f *Fault
	if errors.As(err, &f) {
		if f.Set == "" {
			f.Set = r.dir
		}
		return f
	}
	return &Fault{Set: r.dir, Problem: conninfo.Redact(err.Error(), r.secrets...), Err: err}
}

func (r *run) progress(format string, args ...any) {
	if r.o.Progress != nil {
		r.o.Progress(format, args...)
	}
}

// serverInfo is what the catalog said before the dump.
type serverInfo struct {
	server    backupset.Server
	databases []string
}

// connect opens a read-only session to database ("" = the target's).
func (r *run) connect(ctx context.Context, database string) (*pgx.Conn, error) {
	cfg := r.cfg.Copy()
	if database != "" {
		cfg.Database = database
	}
	rp := map[string]string{}
	for k, v := range cfg.RuntimeParams {
		rp[k] = v
	}
	rp["application_name"] = "pgaegis-backup"
	// Nothing here writes; the server enforces that for us.
	rp["default_transaction_read_only"] = "on"
	cfg.RuntimeParams = rp
	_ = conninfo.Guard(cfg)
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		what := conninfo.Describe(cfg)
		return nil, &Fault{Problem: fmt.Sprintf("connecting to %s: %s", what, conninfo.Redact(err.Error(), r.secrets...)), Err: err}
	}
	return c, nil
}

func (r *run) inspect(ctx context.Context) (*serverInfo, error) {
	c, err := r.connect(ctx, "")
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	var s serverInfo
	var num, cur string
	if err := c.QueryRow(ctx, "select current_setting('server_version'), current_setting('server_version_num'), current_database()").Scan(&s.server.Version, &num, &cur); err != nil {
		return nil, &Fault{Problem: "reading the server's version: " + conninfo.Redact(err.Error(), r.secrets...), Err: err}
	}
	s.server.VersionNum, _ = strconv.Atoi(num)
	// pg_control_system is for superusers and pg_monitor members only:
	// without it the manifest simply has no system identifier.
	var sysid string
	if err := c.QueryRow(ctx, "select system_identifier::text from pg_control_system()").Scan(&sysid); err == nil {
		s.server.SystemIdentifier = sysid
	}
	s.server.Target = target(r.cfg, cur)

	switch {
	case r.o.All:
		rows, err := c.Query(ctx, "select datname from pg_database where datallowconn and not datistemplate order by datname")
		if err != nil {
			return nil, &Fault{Problem: "listing databases: " + err.Error(), Err: err}
		}
		s.databases, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, &Fault{Problem: "listing databases: " + err.Error(), Err: err}
		}
	case len(r.o.Databases) > 0:
		seen := map[string]bool{}
		for _, d := range r.o.Databases {
			if !seen[d] {
				seen[d] = true
				s.databases = append(s.databases, d)
			}
		}
		// Every named database must exist before anything is written.
		var missing []string
		if err := c.QueryRow(ctx, "select coalesce(array_agg(n order by n), '{}') from unnest($1::text[]) n where n not in (select datname from pg_database)", s.databases).Scan(&missing); err != nil {
			return nil, &Fault{Problem: "listing databases: " + err.Error(), Err: err}
		}
		if len(missing) > 0 {
			return nil, &Fault{Problem: fmt.Sprintf("database %s does not exist on %s", quoteList(missing), s.server.Target)}
		}
	default:
		s.databases = []string{cur}
	}
	return &s, nil
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// target is host:port/db for the manifest: where, never how (no user's
// password, no options).
func target(cfg *pgx.ConnConfig, db string) string {
	return cfg.Host + ":" + strconv.Itoa(int(cfg.Port)) + "/" + db
}

func defaultName(host string) string {
	if host == "" || strings.HasPrefix(host, "/") || strings.HasPrefix(host, "@") {
		return "local"
	}
	return host
}

// safeName keeps a set name to one plain path element.
func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			b[i] = '_'
		}
	}
	s = strings.TrimLeft(string(b), ".")
	if s == "" {
		s = "backup"
	}
	return s
}

// catalogTable is one table as the catalog saw it before the dump.
type catalogTable struct {
	schema, name string
	estimate     int64 // reltuples (-1 never analyzed, from 14)
	bytes        int64 // pg_table_size: heap and TOAST, for bin-packing
}

func tableKey(schema, name string) string { return schema + "\x00" + name }

// catalogQuery lists the tables whose data pg_dump dumps: ordinary
// tables and partitions outside the system schemas that are not members
// of an extension (their data is the extension's, dumped only for
// configuration tables and never with -t from outside).
const catalogQuery = `
select n.nspname, c.relname, c.reltuples::bigint, pg_table_size(c.oid)
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'r'
  and n.nspname not in ('pg_catalog', 'information_schema')
  and n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
  and not exists (select 1 from pg_depend d
                  where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
order by 1, 2`

func readCatalog(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) ([]catalogTable, error) {
	rows, err := q.Query(ctx, catalogQuery)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (catalogTable, error) {
		var t catalogTable
		err := row.Scan(&t.schema, &t.name, &t.estimate, &t.bytes)
		return t, err
	})
}

// dumpDatabase is one pg_dump -Fc into one sealed file.
func (r *run) dumpDatabase(ctx context.Context, db string) (*backupset.Database, error) {
	c, err := r.connect(ctx, db)
	if err != nil {
		return nil, err
	}
	cat, err := readCatalog(ctx, c)
	c.Close(context.Background())
	if err != nil {
		return nil, &Fault{Problem: fmt.Sprintf("reading the tables of %q: %v", db, conninfo.Redact(err.Error(), r.secrets...)), Err: err}
	}
	p, err := r.dumpPart(ctx, db, 0, nil)
	if err != nil {
		return nil, err
	}
	return assemble(db, cat, []*partResult{p}), nil
}

// partResult is one finished, committed dump file.
type partResult struct {
	part    int
	file    backupset.File
	summary *pgarchive.Summary
}

// assemble is a database's manifest entry from its parts (part 0 first).
func assemble(db string, cat []catalogTable, parts []*partResult) *backupset.Database {
	est := map[string]int64{}
	for _, t := range cat {
		est[tableKey(t.schema, t.name)] = t.estimate
	}
	d := &backupset.Database{Name: db, Tables: []backupset.Table{}}
	for _, p := range parts {
		d.Files = append(d.Files, p.file)
		d.TOCEntries += len(p.summary.Entries)
		d.Blobs += p.summary.Blobs
		for _, t := range p.summary.Tables {
			e, ok := est[tableKey(t.Namespace, t.Name)]
			if !ok {
				e = -1
			}
			d.Tables = append(d.Tables, backupset.Table{Schema: t.Namespace, Name: t.Name, Rows: t.Rows, Estimate: e, Part: p.part})
		}
	}
	return d
}

// dumpPart runs pg_dump -Fc -Z0 (plus extra) for db into the set's file
// for part, parsing the archive as it passes.
func (r *run) dumpPart(ctx context.Context, db string, part int, extra []string) (*partResult, error) {
	what := fmt.Sprintf("pg_dump of %q", db)
	if part > 0 {
		what = fmt.Sprintf("pg_dump of %q (part %d)", db, part)
	}
	args := append([]string{"--format=custom", "--compress=0", "--no-password"}, extra...)
	name := backupset.DumpFileName(db, part)
	ar := pgarchive.NewReader()
	t0 := time.Now()
	st, err := r.stream(ctx, what, r.pgDump, db, args, name, ar)
	if err != nil {
		return nil, err
	}
	sum, err := ar.Close()
	if err != nil {
		return nil, &Fault{Problem: fmt.Sprintf("%s: %v", what, err), Err: err}
	}
	secs := time.Since(t0).Seconds()
	r.progress("%s: %s in %.1f s (%s/s), %d tables, %s sealed", what, mb(st.PlainBytes), secs, mb(int64(float64(st.PlainBytes)/max(secs, 1e-3))), len(sum.Tables), mb(st.CipherBytes))
	return &partResult{part: part, file: fileOf(name, st), summary: sum}, nil
}

// globals runs pg_dumpall --globals-only into the globals file.
func (r *run) globals(ctx context.Context, tool pgclient.Tool) (*backupset.File, error) {
	args := []string{"--globals-only", "--no-password"}
	if !r.o.WithPasswords {
		args = append(args, "--no-role-passwords")
	}
	tail := &tailWriter{max: 256}
	t0 := time.Now()
	st, err := r.stream(ctx, "pg_dumpall --globals-only", tool, "", args, backupset.GlobalsName, tail)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(string(tail.buf), GlobalsComplete) {
		return nil, &Fault{Problem: "pg_dumpall --globals-only: the script does not end with pg_dumpall's \"dump complete\" comment: it stopped short"}
	}
	r.progress("globals: %s in %.1f s", mb(st.PlainBytes), time.Since(t0).Seconds())
	f := fileOf(backupset.GlobalsName, st)
	return &f, nil
}

func fileOf(name string, st sealedfile.Stats) backupset.File {
	return backupset.File{Name: name, PlainBytes: st.PlainBytes, CompressedBytes: st.CompressedBytes, CipherBytes: st.CipherBytes, SHA256: st.SHA256}
}

// stream runs tool against database with args, its stdout sealed into
// the set's file name and also written to check (the archive parser or
// the globals' tail); on any failure the partial file is gone and pg_dump
// dead. what names the stage in messages.
func (r *run) stream(ctx context.Context, what string, tool pgclient.Tool, database string, args []string, name string, check io.Writer) (sealedfile.Stats, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd, closeCmd, err := command(ctx, r.o.Target, tool, database, args...)
	if err != nil {
		return sealedfile.Stats{}, &Fault{Problem: fmt.Sprintf("%s: %s", what, conninfo.Redact(err.Error(), r.secrets...)), Err: err}
	}
	defer closeCmd()
	w, err := sealedfile.Create(filepath.Join(r.dir, name), r.sealOpt)
	if err != nil {
		return sealedfile.Stats{}, &Fault{Problem: fmt.Sprintf("%s: %v", what, err), Err: err}
	}
	committed := false
	defer func() {
		if !committed {
			w.Abort()
		}
	}()

	pr, pw, err := os.Pipe()
	if err != nil {
		return sealedfile.Stats{}, err
	}
	growPipe(pr)
	cmd.Stdout = pw
	errBuf := &tailWriter{max: stderrKeep}
	cmd.Stderr = errBuf
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return sealedfile.Stats{}, &Fault{Problem: fmt.Sprintf("%s: starting %s: %v", what, tool.Path, err), Err: err}
	}
	pw.Close() // the child holds the write end now: EOF when it exits
	if startHook != nil {
		startHook(cmd)
	}
	// pg_dump must not go on once nothing reads it.
	dsts := []io.Writer{check, w}
	if byteHook != nil {
		var seen int64
		dsts = append(dsts, writerFunc(func(p []byte) (int, error) {
			seen += int64(len(p))
			byteHook(cmd, seen)
			return len(p), nil
		}))
	}
	var weStopped bool // set before the kill: the copy's error is the cause, not pg_dump's death
	n, copyErr := pump(pr, func() { weStopped = true; cmd.Process.Kill() }, dsts...)
	pr.Close()
	waitErr := cmd.Wait()
	stderr := conninfo.Redact(strings.TrimSpace(string(errBuf.buf)), r.secrets...)
	switch {
	case ctx.Err() != nil && waitErr != nil:
		return sealedfile.Stats{}, &Fault{Problem: fmt.Sprintf("%s: stopped after %s: %v", what, mb(n), context.Cause(ctx)), Err: ctx.Err()}
	case weStopped && copyErr != nil:
		// Writing failed (a full disk, the archive check): pg_dump was
		// ended because of it, so its "killed" is not the news.
		return sealedfile.Stats{}, &Fault{Problem: fmt.Sprintf("%s: after %s: %v (%s was stopped)", what, mb(n), copyErr, filepath.Base(tool.Path)), Err: copyErr}
	case waitErr != nil:
		return sealedfile.Stats{}, &Fault{Problem: fmt.Sprintf("%s %s after %s%s", what, exitText(waitErr), mb(n), stderrText(stderr)), Err: waitErr}
	case copyErr != nil:
		return sealedfile.Stats{}, &Fault{Problem: fmt.Sprintf("%s: after %s: %v%s", what, mb(n), copyErr, stderrText(stderr)), Err: copyErr}
	}
	st, err := w.Commit()
	committed = true // a failed Commit removed the file itself
	if err != nil {
		return sealedfile.Stats{}, &Fault{Problem: fmt.Sprintf("%s: sealing %s: %v", what, name, err), Err: err}
	}
	return st, nil
}

func stderrText(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

// exitText says how a child ended: "exited with status 1", "was killed
// by signal killed".
func exitText(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "was killed by signal " + ws.Signal().String()
		}
		return "exited with status " + strconv.Itoa(ee.ExitCode())
	}
	return "failed: " + err.Error()
}

// mb renders a byte count for a person.
func mb(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	max int
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}
