package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/agekeys"
	"github.com/pgaegis/pgaegis/internal/backup"
	"github.com/pgaegis/pgaegis/internal/backupset"
	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/pgclient"
)

// backupFlags are what 'pgaegis backup' takes besides the connection.
type backupFlags struct {
	recipients    string
	out           string
	all           bool
	databases     []string
	globals       bool
	withPasswords bool
	jobs          int
	name          string
	level         int
	format        string
}

// backupCmd is 'pgaegis backup' and its subcommands (docs/backup.md).
func backupCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup [connection options] --recipients FILE --out DIR",
		Short: "dump databases with pg_dump into an encrypted backup set that can prove itself",
		Long: `Dump the connected database (or each --database, or --all with the globals)
with pg_dump's custom format, streamed through zstd and age to the
recipients of --recipients (age X25519 keys, SSH public keys, age
plugins), into a new set directory under --out. No plaintext is written
anywhere: no temporary files, memory bounded. Every stage's exit status
and the archive's completeness are checked; the set's manifest.json (server
and pg_dump versions, table of contents, rows per table, sizes, sha256 of
each file, the recipients) is written last and MACed with a key carried
inside the encrypted files, so an edit is detected.

-d/--dbname is the database to connect to, as in psql; --database names
the databases to dump (repeatable; default the connected one). Roles'
password verifiers are left out of the globals unless --with-passwords.
--jobs N dumps the tables of a database N at a time, each stream sealed
on its own (never pg_dump -Fd, which writes plaintext files).

A new set is not "verified" until 'pgaegis backup verify' has decrypted
it and checked it against the manifest; retention ('backup prune') counts
only verified sets.

The password, when one is needed, reaches pg_dump through an in-memory
pgpass file: never in its arguments or environment.

Exit codes: 0 the set was written; 2 a usage error, or the backup failed
(a stage's exit status, an incomplete dump, a write error: the message
says which, and no set is left behind).`,
		Example: `  pgaegis backup -h /var/run/postgresql -U postgres --recipients /etc/pgaegis/recipients --out /var/backups/pgaegis
  pgaegis backup -d "host=db.example.com dbname=shop sslmode=verify-full" --recipients /etc/pgaegis/recipients --out /var/backups/pgaegis --jobs 4
  pgaegis backup -h /var/run/postgresql -U postgres --all --with-passwords --recipients /etc/pgaegis/recipients --out /var/backups/pgaegis --format json
  pgaegis backup verify /var/backups/pgaegis/db-20261203T020000Z --identity /etc/pgaegis/identity --restore-test
  pgaegis backup prune /var/backups/pgaegis --keep-days 30 --keep-last 7`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q (backup takes options; its subcommands are verify, list, prune, rekey)", args[0])
			}
			return nil
		},
	}
	var conn connFlags
	conn.register(cmd)
	var f backupFlags
	fs := cmd.Flags()
	fs.StringVar(&f.recipients, "recipients", "", "seal to the recipients in `FILE` (one per line, as age -R: age1..., ssh-ed25519/ssh-rsa public keys, plugins)")
	fs.StringVar(&f.out, "out", "", "backup root `DIR`: the set is written to DIR/NAME-YYYYMMDDTHHMMSSZ")
	fs.BoolVar(&f.all, "all", false, "dump every database that allows connections (templates aside), and the globals")
	fs.StringArrayVar(&f.databases, "database", nil, "dump this database `NAME` (repeatable; default the connected database)")
	fs.BoolVar(&f.globals, "globals", false, "also dump the globals (roles, tablespaces) with pg_dumpall --globals-only")
	fs.BoolVar(&f.withPasswords, "with-passwords", false, "keep the roles' password verifiers in the globals (left out by default)")
	fs.IntVar(&f.jobs, "jobs", 1, "dump `N` tables of a database at a time, each stream sealed on its own")
	fs.StringVar(&f.name, "name", "", "set `NAME` prefix (default the server's host, or local for a socket)")
	fs.IntVar(&f.level, "level", 0, "zstd `LEVEL`: 1 fastest to 4 best (0 the default, 2)")
	fs.StringVar(&f.format, "format", "text", "`FORMAT` of the result: text or json")
	cmd.MarkFlagFilename("recipients")
	cmd.MarkFlagDirname("out")
	completeValues(cmd, "format", "text", "json")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, _ []string) (int, error) {
		if err := f.check(); err != nil {
			return ExitError, err
		}
		recipients, err := agekeys.ParseRecipientsFile(f.recipients)
		if err != nil {
			return ExitError, err
		}
		cfg, err := conn.config(env)
		if err != nil {
			return ExitError, err
		}
		o := backup.Options{
			Target:     pgclient.Target{Flags: conn.f, Config: cfg},
			Recipients: recipients, Out: f.out, Name: f.name,
			Databases: f.databases, All: f.all, Globals: f.globals, WithPasswords: f.withPasswords,
			Jobs: f.jobs, Level: f.level, Progress: backupProgress(env, "backup"),
		}
		res, err := backup.Backup(ctx, o)
		if err != nil {
			err = backupFailure(err)
			if f.format == "json" {
				writeJSON(env, map[string]any{"format_version": 1, "ok": false, "error": redact(env, err)})
			}
			return ExitError, err
		}
		if f.format == "json" {
			return ExitOK, writeJSON(env, backupJSON(res))
		}
		writeBackupText(textOut(env), res)
		return ExitOK, nil
	})
	cmd.AddCommand(backupVerifyCmd(env), backupListCmd(env), backupPruneCmd(env), backupRekeyCmd(env))
	return cmd
}

// check refuses bad flags before anything is read or connected.
func (f *backupFlags) check() error {
	switch {
	case f.format != "text" && f.format != "json":
		return usagef("unknown --format %q (text or json)", f.format)
	case f.recipients == "":
		return usagef("--recipients FILE is needed: the set is sealed to the public keys in it (age-keygen -y KEY prints one)")
	case f.out == "":
		return usagef("--out DIR is needed: the backup root the set directory is made in")
	case f.all && len(f.databases) > 0:
		return usagef("--all and --database contradict each other: --all dumps every database")
	case f.withPasswords && !f.all && !f.globals:
		return usagef("--with-passwords is about the globals: give --globals or --all too")
	case f.jobs < 1 || f.jobs > 64:
		return usagef("--jobs %d: 1 to 64", f.jobs)
	case f.level < 0 || f.level > 4:
		return usagef("--level %d: 1 (fastest) to 4 (best), or 0 for the default", f.level)
	}
	for _, d := range f.databases {
		if d == "" {
			return usagef("--database: an empty name")
		}
	}
	if n := f.name; n != "" && (strings.ContainsAny(n, "/\x00") || strings.HasPrefix(n, ".") || len(n) > 100) {
		return usagef("--name %q: a set name is part of a directory name (no '/', not starting with '.', at most 100 bytes)", n)
	}
	return nil
}

// backupFailure words a failed backup: a *backup.Fault is a backup that
// did not happen; the set directory it names should be gone, and the
// message says whether it is.
func backupFailure(err error) error {
	var fault *backup.Fault
	if !errors.As(err, &fault) {
		return err
	}
	if fault.Set != "" {
		if _, serr := os.Lstat(fault.Set); errors.Is(serr, os.ErrNotExist) {
			return fmt.Errorf("backup failed, no set was kept: %w", err)
		}
		return fmt.Errorf("backup failed: %w (%s was left behind and is not a usable set)", err, fault.Set)
	}
	return fmt.Errorf("backup failed: %w", err)
}

// backupProgress prints one line per stage on a terminal only.
func backupProgress(env *Env, what string) backup.Progress {
	if !isTerminal(env.Stderr) {
		return nil
	}
	return func(format string, a ...any) {
		fmt.Fprintf(env.Stderr, "pgaegis %s: %s\n", what, esc(fmt.Sprintf(format, a...)))
	}
}

// textOut returns the escaping writer for a command's text output.
func textOut(env *Env) io.Writer { return textEnv(env).Stdout }

func redact(env *Env, err error) string { return conninfo.Redact(err.Error(), env.secrets...) }

// fileBytes sums a database's files.
func fileBytes(files []backupset.File) (plain, cipher int64) {
	for _, f := range files {
		plain += f.PlainBytes
		cipher += f.CipherBytes
	}
	return plain, cipher
}

func tableRows(tables []backupset.Table) (rows int64) {
	for _, t := range tables {
		rows += t.Rows
	}
	return rows
}

// setBytes is the ciphertext size of a set: what it takes on disk.
// diskBytes is what the set's files take on disk now (a truncated file
// counts as it is, not as the manifest remembers it).
func diskBytes(dir string, m *backupset.Manifest) int64 {
	var n int64
	for _, f := range m.AllFiles() {
		if fi, err := os.Lstat(filepath.Join(dir, f.Name)); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func setBytes(m *backupset.Manifest) int64 {
	_, n := fileBytes(m.AllFiles())
	return n
}

func writeBackupText(w io.Writer, r *backup.Result) {
	m := r.Manifest
	fmt.Fprintf(w, "backup set %s\n", esc(r.Dir))
	fmt.Fprintf(w, "  server %s, pg_dump %s, sealed to %d recipient(s)\n", esc(m.Server.Version), esc(m.PgDump.Version), len(m.Recipients))
	for _, d := range m.Databases {
		plain, cipher := fileBytes(d.Files)
		fmt.Fprintf(w, "  database %s: %s dumped, %s sealed, %d tables, %d rows", esc(d.Name), humanBytes(plain), humanBytes(cipher), len(d.Tables), tableRows(d.Tables))
		if len(d.Files) > 1 {
			fmt.Fprintf(w, ", %d files", len(d.Files))
		}
		fmt.Fprintln(w)
	}
	if g := m.Globals; g != nil {
		pw := "without password verifiers"
		if m.WithPasswords {
			pw = "with password verifiers"
		}
		fmt.Fprintf(w, "  globals: %s sealed (%s)\n", humanBytes(g.CipherBytes), pw)
	}
	fmt.Fprintf(w, "  took %s\n", m.Finished.Sub(m.Started).Round(10*time.Millisecond))
	fmt.Fprintf(w, "not verified yet: pgaegis backup verify %s --identity FILE [--restore-test]\n", esc(r.Dir))
}

type backupDBJSON struct {
	Name        string `json:"name"`
	PlainBytes  int64  `json:"plain_bytes"`
	CipherBytes int64  `json:"cipher_bytes"`
	Files       int    `json:"files"`
	Tables      int    `json:"tables"`
	Rows        int64  `json:"rows"`
}

func backupJSON(r *backup.Result) map[string]any {
	m := r.Manifest
	dbs := []backupDBJSON{}
	for _, d := range m.Databases {
		plain, cipher := fileBytes(d.Files)
		dbs = append(dbs, backupDBJSON{d.Name, plain, cipher, len(d.Files), len(d.Tables), tableRows(d.Tables)})
	}
	j := map[string]any{
		"format_version": 1, "ok": true, "dir": r.Dir, "name": m.Name,
		"started": m.Started, "finished": m.Finished, "seconds": m.Finished.Sub(m.Started).Seconds(),
		"server_version": m.Server.Version, "pg_dump_version": m.PgDump.Version,
		"recipients": m.Recipients, "databases": dbs, "cipher_bytes": setBytes(m), "verified": false,
	}
	if m.Globals != nil {
		j["globals"] = map[string]any{"cipher_bytes": m.Globals.CipherBytes, "with_passwords": m.WithPasswords}
	}
	return j
}

// identities reads --identity.
func identities(path string) ([]age.Identity, error) {
	if path == "" {
		return nil, usagef("--identity FILE is needed: the age identity (secret key) that opens the set")
	}
	return agekeys.ParseIdentitiesFile(path)
}

// setDirArg takes one set directory.
func setDirArg(what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != 1 || args[0] == "" {
			return usagef("%s needs one backup set directory", what)
		}
		return nil
	}
}

func backupVerifyCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify SET_DIR --identity FILE [--restore-test]",
		Short: "decrypt a backup set and check it against its manifest; with --restore-test, restore it and compare rows",
		Long: `Decrypt every file of the backup set in SET_DIR with --identity and check
it against the set's manifest: each file's size and sha256, the manifest's
MAC (keyed with the key inside the encrypted files), each dump's archive
for completeness, and the rows of every table. With --restore-test the
set is also restored into a throwaway server of the dump's major version,
started and removed by pgaegis, and count(*) of every table compared.

The outcome is written to verification.json in the set (MACed too); only
a set whose verification passed counts as verified in 'backup list' and
for retention.

Exit codes: 0 verified; 2 a usage error, or the set did not prove itself
(each problem is printed).`,
		Example: `  pgaegis backup verify /var/backups/pgaegis/db-20261203T020000Z --identity /etc/pgaegis/identity
  pgaegis backup verify /var/backups/pgaegis/db-20261203T020000Z --identity /etc/pgaegis/identity --restore-test --format json`,
		Args: setDirArg("backup verify"),
	}
	fs := cmd.Flags()
	identity := fs.String("identity", "", "open the set with the age identities in `FILE` (as age -i; not readable by group or others)")
	restoreTest := fs.Bool("restore-test", false, "also restore into a throwaway server of the dump's major and compare count(*) per table")
	binDir := fs.String("bin-dir", "", "server binaries `DIR` (initdb, postgres) for --restore-test (default found by the dump's major)")
	format := fs.String("format", "text", "`FORMAT` of the result: text or json")
	cmd.MarkFlagFilename("identity")
	cmd.MarkFlagDirname("bin-dir")
	completeValues(cmd, "format", "text", "json")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		if *format != "text" && *format != "json" {
			return ExitError, usagef("unknown --format %q (text or json)", *format)
		}
		if *binDir != "" && !*restoreTest {
			return ExitError, usagef("--bin-dir is for --restore-test")
		}
		ids, err := identities(*identity)
		if err != nil {
			return ExitError, err
		}
		dir := args[0]
		v, err := backup.Verify(ctx, dir, backup.VerifyOptions{Identities: ids, RestoreTest: *restoreTest, BinDir: *binDir,
			Progress: backupProgress(env, "backup verify")})
		if *format == "json" {
			j := map[string]any{"format_version": 1, "dir": dir, "ok": err == nil && v != nil && v.OK, "problems": []string{}}
			if v != nil {
				j["verified"] = v.Verified
				j["problems"] = nonNil(v.Problems)
				j["files"] = v.Files
				if v.RestoreTest != nil {
					j["restore_test"] = v.RestoreTest
				}
			}
			if err != nil {
				j["error"] = redact(env, err)
			}
			if werr := writeJSON(env, j); werr != nil && err == nil {
				return ExitError, werr
			}
		} else if v != nil {
			writeVerifyText(textOut(env), dir, v, err == nil)
		}
		if err != nil && *format == "text" && v != nil && len(v.Problems) > 0 {
			// The problems are listed above; stderr says only the verdict.
			msg := fmt.Sprintf("%s: NOT verified (%d problem(s) above)", dir, len(v.Problems))
			var fault *backup.Fault
			if errors.As(err, &fault) && strings.HasSuffix(fault.Problem, backup.KeptRecordNote) {
				msg += " " + backup.KeptRecordNote
			}
			return ExitError, errors.New(msg)
		}
		if err != nil {
			return ExitError, verifyFailure(err)
		}
		if v == nil || !v.OK {
			return ExitError, fmt.Errorf("%s: not verified", dir)
		}
		return ExitOK, nil
	})
	return cmd
}

func verifyFailure(err error) error {
	var fault *backup.Fault
	if errors.As(err, &fault) {
		return fmt.Errorf("NOT verified: %w", err)
	}
	return err
}

func writeVerifyText(w io.Writer, dir string, v *backupset.Verification, ok bool) {
	if ok && v.OK {
		fmt.Fprintf(w, "verified %s: %d files decrypted, sizes, sha256 and MAC match, archives complete\n", esc(dir), len(v.Files))
	} else {
		fmt.Fprintf(w, "NOT verified %s\n", esc(dir))
	}
	for _, p := range v.Problems {
		fmt.Fprintf(w, "  problem: %s\n", esc(p))
	}
	if rt := v.RestoreTest; rt != nil {
		fmt.Fprintf(w, "  restore test: %d tables restored into a throwaway %s server with pg_restore %s in %.1fs",
			rt.Tables, esc(rt.ServerVersion), esc(rt.PgRestore.Version), rt.Seconds)
		if len(rt.Mismatches) == 0 {
			fmt.Fprintln(w, ", every count(*) matches the dump")
		} else {
			fmt.Fprintf(w, ", %d mismatches:\n", len(rt.Mismatches))
			for _, m := range rt.Mismatches {
				fmt.Fprintf(w, "    %s\n", esc(m))
			}
		}
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// setLine is one set of 'backup list'.
type setLine struct {
	Dir          string     `json:"dir"`
	Name         string     `json:"name"`
	Started      *time.Time `json:"started"`
	CipherBytes  int64      `json:"cipher_bytes"`
	Databases    []string   `json:"databases"`
	Verified     bool       `json:"verified"`
	VerifiedAt   *time.Time `json:"verified_at,omitempty"`
	RestoreTest  bool       `json:"restore_tested"`
	Problems     []string   `json:"problems"`
	Verification string     `json:"verification"` // "ok", "failed", "never", "stale"
	InUse        bool       `json:"in_use"`       // a backup, verify or rekey holds the set now
	Rehashed     bool       `json:"rehashed"`     // every file was read and matched its sha256
}

func describeSet(s backupset.Set) setLine {
	l := setLine{Dir: s.Dir, Name: filepath.Base(s.Dir), Databases: []string{}, Problems: []string{}}
	if s.Problem != "" {
		l.Problems = append(l.Problems, s.Problem)
	}
	if m := s.Manifest; m != nil {
		t := m.Started
		l.Started = &t
		l.CipherBytes = diskBytes(s.Dir, m)
		for _, d := range m.Databases {
			l.Databases = append(l.Databases, d.Name)
		}
	}
	l.Verified = s.Verified()
	l.InUse, l.Rehashed = s.InUse, s.Rehashed
	v := s.Verification
	switch {
	case v == nil:
		l.Verification = "never"
	case !v.OK:
		l.Verification = "failed"
		// A verification that failed on a file the listing also finds
		// missing says the same thing: say it once.
		for _, p := range v.Problems {
			if !slices.Contains(l.Problems, p) {
				l.Problems = append(l.Problems, p)
			}
		}
	case !l.Verified:
		// It passed once, but the files no longer are the ones it checked.
		l.Verification = "stale"
		if len(l.Problems) == 0 {
			l.Problems = append(l.Problems, "changed since its verification (the manifest or a file is not what was verified)")
		}
	default:
		l.Verification = "ok"
	}
	if v != nil {
		t := v.Verified
		l.VerifiedAt = &t
		l.RestoreTest = l.Verified && v.RestoreTest != nil && len(v.RestoreTest.Mismatches) == 0
	}
	return l
}

func backupListCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list DIR",
		Short: "list the backup sets under DIR, newest first, and whether each is verified",
		Long: `List the backup sets directly under DIR, newest first: name, start time,
size on disk, whether it is verified (a passing verification that names
the files as they are now), whether a restore test passed, and problems
(an unreadable manifest, a missing, resized or changed file, a failed
verification, a set still being written). No key is needed: this reads
the manifests and verification records, and every file of each verified
set to check its sha256 (a byte changed since the verification
un-verifies the set); --quick checks only sizes.

Exit codes: 0 listed (whatever the sets' state); 2 a usage error or DIR
cannot be read.`,
		Example: `  pgaegis backup list /var/backups/pgaegis
  pgaegis backup list /var/backups/pgaegis --format json`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 || args[0] == "" {
				return usagef("backup list needs the backup root DIR (the --out of backup)")
			}
			return nil
		},
	}
	format := cmd.Flags().String("format", "text", "`FORMAT`: text or json")
	quick := cmd.Flags().Bool("quick", false, "check file sizes only, not their sha256 (no file is read)")
	completeValues(cmd, "format", "text", "json")
	cmd.RunE = runE(env, func(_ context.Context, env *Env, args []string) (int, error) {
		if *format != "text" && *format != "json" {
			return ExitError, usagef("unknown --format %q (text or json)", *format)
		}
		sets, err := backupset.List(args[0])
		if err != nil {
			return ExitError, err
		}
		if !*quick {
			backupset.Rehash(sets, 0)
		}
		lines := []setLine{}
		for _, s := range sets {
			lines = append(lines, describeSet(s))
		}
		if *format == "json" {
			return ExitOK, writeJSON(env, lines)
		}
		w := textOut(env)
		if len(lines) == 0 {
			fmt.Fprintf(w, "no backup sets in %s\n", esc(args[0]))
			return ExitOK, nil
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SET\tSTARTED\tSIZE\tVERIFIED\tRESTORE-TEST\tPROBLEMS")
		for _, l := range lines {
			started := "-"
			if l.Started != nil {
				started = l.Started.UTC().Format("2006-01-02 15:04:05Z")
			}
			size := "-"
			if l.Started != nil {
				size = humanBytes(l.CipherBytes)
			}
			ver := "no"
			switch {
			case l.InUse:
				ver = "in use"
			case l.Verified:
				ver = "yes"
			case l.Verification == "stale" || l.Verification == "failed":
				ver = "no (" + l.Verification + ")"
			}
			rt := "no"
			if l.RestoreTest {
				rt = "yes"
			}
			problems := "-"
			if len(l.Problems) > 0 {
				problems = strings.Join(escAll(l.Problems), "; ")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", esc(l.Name), started, size, ver, rt, problems)
		}
		tw.Flush()
		return ExitOK, nil
	})
	return cmd
}

func backupPruneCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "prune DIR [--keep-days N] [--keep-last N] [--dry-run]",
		Short: "delete old backup sets under DIR, never the newest verified one, counting only verified sets",
		Long: `Apply retention to the backup sets directly under DIR: keep the sets
started within --keep-days days, and the newest --keep-last verified
sets; delete the rest. The newest verified set is never deleted, an
unverified set never counts towards --keep-last, and an unverified set
newer than the newest verified one is kept (it may be awaiting 'backup
verify') unless older than --keep-days. Each decision is printed with its
reason; --dry-run deletes nothing.

Exit codes: 0 pruned (or, with --dry-run, decided); 2 a usage error (no
rule given) or a set could not be deleted.`,
		Example: `  pgaegis backup prune /var/backups/pgaegis --keep-days 30 --keep-last 7
  pgaegis backup prune /var/backups/pgaegis --keep-last 3 --dry-run`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 || args[0] == "" {
				return usagef("backup prune needs the backup root DIR (the --out of backup)")
			}
			return nil
		},
	}
	fs := cmd.Flags()
	days := fs.Int("keep-days", 0, "keep the sets started within `N` days")
	last := fs.Int("keep-last", 0, "keep the newest `N` verified sets")
	dry := fs.Bool("dry-run", false, "print the decisions and delete nothing")
	format := fs.String("format", "text", "`FORMAT`: text or json")
	completeValues(cmd, "format", "text", "json")
	cmd.RunE = runE(env, func(_ context.Context, env *Env, args []string) (int, error) {
		switch {
		case *format != "text" && *format != "json":
			return ExitError, usagef("unknown --format %q (text or json)", *format)
		case *days < 0 || *last < 0:
			return ExitError, usagef("--keep-days and --keep-last are counts: not negative")
		case *days == 0 && *last == 0:
			return ExitError, usagef("give --keep-days N, --keep-last N or both, at least one above 0: with neither, nothing says what to keep")
		}
		ds, err := backup.Prune(args[0], backup.PruneOptions{Keep: backupset.Keep{Days: *days, Last: *last}, DryRun: *dry,
			Progress: backupProgress(env, "backup prune")})
		type decision struct {
			Dir     string `json:"dir"`
			Name    string `json:"name"`
			Keep    bool   `json:"keep"`
			Deleted bool   `json:"deleted"`
			Reason  string `json:"reason"`
		}
		list := []decision{}
		for _, d := range ds {
			list = append(list, decision{d.Set.Dir, filepath.Base(d.Set.Dir), d.Keep, !d.Keep && !*dry, d.Reason})
		}
		if *format == "json" {
			j := map[string]any{"format_version": 1, "dry_run": *dry, "ok": err == nil, "decisions": list}
			if err != nil {
				j["error"] = redact(env, err)
			}
			if werr := writeJSON(env, j); werr != nil && err == nil {
				return ExitError, werr
			}
		} else {
			w := textOut(env)
			for _, d := range list {
				verdict := "kept   "
				switch {
				case d.Keep:
				case *dry:
					verdict = "would delete"
				default:
					verdict = "deleted"
				}
				fmt.Fprintf(w, "%-12s %s  (%s)\n", verdict, esc(d.Name), esc(d.Reason))
			}
			if len(list) == 0 && err == nil {
				fmt.Fprintf(w, "no backup sets in %s\n", esc(args[0]))
			}
		}
		if err != nil {
			return ExitError, err
		}
		return ExitOK, nil
	})
	return cmd
}

func backupRekeyCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rekey SET_DIR --identity FILE --recipients FILE",
		Short: "re-encrypt a backup set to new recipients, without plaintext touching the disk",
		Long: `Re-encrypt every file of the backup set in SET_DIR to the recipients of
--recipients, opening them with --identity: each file is decrypted and
encrypted again as a stream (the compressed bytes are not touched), and
the old files are replaced only once every new one is written. The
manifest is rewritten with the new recipients and signed again with the
set's key. A set whose verification passed stays verified: the record is
rewritten with the new files' sha256 (payload and key are unchanged, and
each old file must still match the manifest before it is rekeyed); a
failed or unsigned record is removed, so such a set needs verifying.

Exit codes: 0 re-encrypted; 2 a usage error, or the set could not be
opened or rewritten (the old files are then left as they were).`,
		Example: `  pgaegis backup rekey /var/backups/pgaegis/db-20261203T020000Z --identity /etc/pgaegis/old-identity --recipients /etc/pgaegis/recipients`,
		Args:    setDirArg("backup rekey"),
	}
	fs := cmd.Flags()
	identity := fs.String("identity", "", "open the set with the age identities in `FILE` (as age -i)")
	recipientsFile := fs.String("recipients", "", "re-encrypt to the recipients in `FILE` (as age -R)")
	format := fs.String("format", "text", "`FORMAT`: text or json")
	cmd.MarkFlagFilename("identity")
	cmd.MarkFlagFilename("recipients")
	completeValues(cmd, "format", "text", "json")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		if *format != "text" && *format != "json" {
			return ExitError, usagef("unknown --format %q (text or json)", *format)
		}
		if *recipientsFile == "" {
			return ExitError, usagef("--recipients FILE is needed: the public keys the set is re-encrypted to")
		}
		ids, err := identities(*identity)
		if err != nil {
			return ExitError, err
		}
		recipients, err := agekeys.ParseRecipientsFile(*recipientsFile)
		if err != nil {
			return ExitError, err
		}
		dir := args[0]
		m, err := backup.Rekey(ctx, dir, ids, recipients)
		if err != nil {
			return ExitError, err
		}
		v, _ := backupset.ReadVerification(dir)
		verified := backupset.Set{Dir: dir, Manifest: m, Verification: v}.Verified()
		if *format == "json" {
			return ExitOK, writeJSON(env, map[string]any{"format_version": 1, "ok": true, "dir": dir,
				"recipients": nonNil(m.Recipients), "verified": verified})
		}
		w := textOut(env)
		fmt.Fprintf(w, "re-encrypted %s to %d recipient(s):\n", esc(dir), len(m.Recipients))
		for _, r := range m.Recipients {
			fmt.Fprintf(w, "  %s\n", esc(r))
		}
		if !verified {
			fmt.Fprintf(w, "not verified since: pgaegis backup verify %s --identity FILE\n", esc(dir))
		}
		return ExitOK, nil
	})
	return cmd
}
