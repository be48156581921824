package rules

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/snapshot"
)

var scanAt = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) *time.Time { t := scanAt.Add(-d); return &t }

// bset is a set that finished ago, verified (and restore-tested) or not.
func bset(name string, ago time.Duration, verified, restored bool) snapshot.BackupSet {
	s := snapshot.BackupSet{Name: name, Dir: "/srv/bk/" + name, Started: at(ago + 10*time.Minute), Finished: at(ago),
		Databases: []string{"app"}, Files: []string{"app.dump.zst.age"}}
	if verified {
		s.Verified, s.VerifyOK, s.VerifiedAt = true, true, at(ago-time.Hour)
		if restored {
			s.RestoreTested = at(ago - time.Hour)
		}
	}
	return s
}

func file(path string, mode uint32, content string) snapshot.BackupEntry {
	return snapshot.BackupEntry{File: snapshot.File{Path: path, Exists: true, Mode: mode, UID: 0, Owner: "root"}, Content: content, Size: 100}
}

func dirEntry(path string, mode uint32) snapshot.BackupEntry {
	return snapshot.BackupEntry{File: snapshot.File{Path: path, Exists: true, IsDir: true, Mode: mode, UID: 0, Owner: "root"}}
}

// backupSnap is a snapshot of one backup directory /srv/bk, scanned by root.
func backupSnap(d snapshot.BackupDir) *snapshot.Snapshot {
	d.Path = "/srv/bk"
	if d.Dir.Path == "" {
		d.Dir = snapshot.File{Path: "/srv/bk", Exists: true, IsDir: true, Mode: 0o700, Owner: "root"}
	}
	return &snapshot.Snapshot{FormatVersion: snapshot.FormatVersion, Backups: &snapshot.Backups{ScannedAt: scanAt, User: "root",
		MaxAgeSeconds: 26 * 3600, RestoreTestMaxAgeSeconds: 8 * 24 * 3600, Dirs: []snapshot.BackupDir{d}}}
}

// runRule runs one rule and renders "status severity object" lines.
func runRule(t *testing.T, id string, s *snapshot.Snapshot) ([]string, []Finding) {
	t.Helper()
	for _, r := range All() {
		if r.ID == id {
			fs := runOne(r, s, "all")
			var out []string
			for _, f := range fs {
				out = append(out, string(f.Status)+" "+f.Severity.String()+" "+f.Object)
			}
			sort.Strings(out)
			return out, fs
		}
	}
	t.Fatalf("no rule %s", id)
	return nil, nil
}

func TestBackupRules(t *testing.T) {
	age := "/srv/bk/s1/app.dump.zst.age"
	cases := []struct {
		name string
		rule string
		snap *snapshot.Snapshot
		want []string
		// evidence (or reason) of the first finding must contain this
		says string
	}{
		{"BKP-01 no directory and no tool", "BKP-01", &snapshot.Snapshot{}, []string{"not_checked medium backups"}, "nothing tells pgaegis where backups are"},
		{"BKP-01 no directory, pgBackRest configured", "BKP-01", &snapshot.Snapshot{Host: &snapshot.Host{PgBackRest: &snapshot.PgBackRest{Config: "/etc/pgbackrest/pgbackrest.conf"}}},
			[]string{"not_checked medium backups"}, "pgbackrest info"},
		{"BKP-01 recent set", "BKP-01", backupSnap(snapshot.BackupDir{Sets: []snapshot.BackupSet{bset("s2", 3*time.Hour, false, false), bset("s1", 30*time.Hour, true, false)}}),
			[]string{"pass medium backup directory /srv/bk"}, "newest backup s2 finished 2026-12-03T09:00:00Z (3 h 0 min before the scan)"},
		{"BKP-01 newest is old", "BKP-01", backupSnap(snapshot.BackupDir{Sets: []snapshot.BackupSet{bset("s1", 50*time.Hour, true, false)}}),
			[]string{"fail medium backup directory /srv/bk"}, "newest backup s1 finished 2026-12-01T10:00:00Z (2 days 2 h before the scan)"},
		{"BKP-01 a recent broken set does not count", "BKP-01", backupSnap(snapshot.BackupDir{Sets: []snapshot.BackupSet{
			func() snapshot.BackupSet {
				s := bset("s2", time.Hour, false, false)
				s.Problem = "app.dump.zst.age is missing"
				return s
			}(),
			bset("s1", 40*time.Hour, true, false)}}),
			[]string{"fail medium backup directory /srv/bk"}, "1 incomplete or unreadable sets not counted (s2)"},
		{"BKP-01 empty directory", "BKP-01", backupSnap(snapshot.BackupDir{}), []string{"fail medium backup directory /srv/bk"}, "no complete backup set"},
		{"BKP-01 unreadable directory", "BKP-01", backupSnap(snapshot.BackupDir{Error: "/srv/bk: permission denied"}), []string{"not_checked medium backup directory /srv/bk"}, "not checked: /srv/bk: permission denied"},
		{"BKP-01 missing directory", "BKP-01", backupSnap(snapshot.BackupDir{Error: "/srv/bk: no such file or directory", Missing: true}), []string{"fail medium backup directory /srv/bk"}, "no backup is kept there"},
		{"BKP-06 missing directory stays not checked", "BKP-06", backupSnap(snapshot.BackupDir{Error: "/srv/bk: no such file or directory", Missing: true}), []string{"not_checked medium backup directory /srv/bk"}, "no such file"},
		{"BKP-01 sets not listed", "BKP-01", backupSnap(snapshot.BackupDir{SetsError: "backup sets not listed: boom"}), []string{"not_checked medium backup directory /srv/bk"}, "boom"},

		{"BKP-06 no directory", "BKP-06", &snapshot.Snapshot{}, []string{"not_checked medium restore tests"}, "--backup-dir"},
		{"BKP-06 recent restore test", "BKP-06", backupSnap(snapshot.BackupDir{Sets: []snapshot.BackupSet{bset("s2", 2*time.Hour, false, false), bset("s1", 5*24*time.Hour, true, true)}}),
			[]string{"pass medium backup directory /srv/bk"}, "newest passing restore test: s1"},
		{"BKP-06 restore test too old", "BKP-06", backupSnap(snapshot.BackupDir{Sets: []snapshot.BackupSet{bset("s1", 10*24*time.Hour, true, true)}}),
			[]string{"fail medium backup directory /srv/bk"}, "9 days 23 h before the scan"},
		{"BKP-06 never restore-tested", "BKP-06", backupSnap(snapshot.BackupDir{Sets: []snapshot.BackupSet{bset("s1", time.Hour, true, false)}}),
			[]string{"fail medium backup directory /srv/bk"}, "no passing restore test"},
		{"BKP-06 the latest test had mismatches", "BKP-06", backupSnap(snapshot.BackupDir{Sets: []snapshot.BackupSet{
			func() snapshot.BackupSet {
				s := bset("s2", time.Hour, true, true)
				s.RestoreMismatches = []string{"public.t: dump 10 rows, restored 9"}
				return s
			}(), bset("s1", 2*24*time.Hour, true, true)}}),
			[]string{"fail medium backup directory /srv/bk"}, "a later restore test of s2"},

		{"BKP-06.verified newest verified", "BKP-06.verified", backupSnap(snapshot.BackupDir{Sets: []snapshot.BackupSet{bset("s1", time.Hour, true, false)}}),
			[]string{"pass medium backup directory /srv/bk"}, "hashes matching"},
		{"BKP-06.verified newest never verified", "BKP-06.verified", backupSnap(snapshot.BackupDir{Sets: []snapshot.BackupSet{bset("s2", time.Hour, false, false), bset("s1", 25*time.Hour, true, false)}}),
			[]string{"fail medium backup directory /srv/bk"}, "s2 was never verified"},
		{"BKP-06.verified record no longer matches", "BKP-06.verified", backupSnap(snapshot.BackupDir{Sets: []snapshot.BackupSet{
			func() snapshot.BackupSet { s := bset("s1", time.Hour, true, false); s.Verified = false; return s }()}}),
			[]string{"fail high backup directory /srv/bk"}, "no longer matches"},
		{"BKP-06.verified failed verification", "BKP-06.verified", backupSnap(snapshot.BackupDir{Sets: []snapshot.BackupSet{
			func() snapshot.BackupSet {
				s := bset("s1", time.Hour, true, false)
				s.Verified, s.VerifyOK, s.VerifyProblems = false, false, []string{"app.dump.zst.age: sha256 differs"}
				return s
			}()}}),
			[]string{"fail high backup directory /srv/bk"}, "sha256 differs"},

		{"BKP-04.files all age", "BKP-04.files", backupSnap(snapshot.BackupDir{Sets: []snapshot.BackupSet{bset("s1", time.Hour, true, false)},
			Entries: []snapshot.BackupEntry{dirEntry("/srv/bk/s1", 0o700), file(age, 0o600, snapshot.ContentAge), file("/srv/bk/s1/manifest.json", 0o600, snapshot.ContentRecord)}}),
			[]string{"pass critical backup directory /srv/bk"}, "2 files in 1 sets"},
		{"BKP-04.files a plaintext pg_dump beside the sets", "BKP-04.files", backupSnap(snapshot.BackupDir{Sets: []snapshot.BackupSet{bset("s1", time.Hour, true, false)},
			Entries: []snapshot.BackupEntry{file(age, 0o600, snapshot.ContentAge), func() snapshot.BackupEntry {
				e := file("/srv/bk/nightly.dump", 0o644, snapshot.ContentPgDump)
				e.Detail = "PGDMP 1.14.0"
				return e
			}()}}),
			[]string{"fail critical file /srv/bk/nightly.dump"}, "/srv/bk/nightly.dump is a plaintext pg_dump archive (PGDMP 1.14.0), not encrypted"},
		{"BKP-04.files gzip stream", "BKP-04.files", backupSnap(snapshot.BackupDir{Entries: []snapshot.BackupEntry{func() snapshot.BackupEntry {
			e := file("/srv/bk/db.sql.gz", 0o600, snapshot.ContentCompressed)
			e.Detail = "gzip"
			return e
		}()}}), []string{"fail critical file /srv/bk/db.sql.gz"}, "a gzip stream"},
		{"BKP-04.files a set file that is not age", "BKP-04.files", backupSnap(snapshot.BackupDir{Sets: []snapshot.BackupSet{bset("s1", time.Hour, true, false)},
			Entries: []snapshot.BackupEntry{file(age, 0o600, snapshot.ContentOther)}}),
			[]string{"fail high file " + age}, "does not start with the age header"},
		{"BKP-04.files unreadable file", "BKP-04.files", backupSnap(snapshot.BackupDir{Entries: []snapshot.BackupEntry{func() snapshot.BackupEntry {
			e := file("/srv/bk/x", 0o600, snapshot.ContentUnreadable)
			e.Detail = "/srv/bk/x: permission denied"
			return e
		}()}}), []string{"not_checked critical file /srv/bk/x"}, "permission denied"},
		{"BKP-04.files walk truncated", "BKP-04.files", backupSnap(snapshot.BackupDir{Truncated: true, Entries: []snapshot.BackupEntry{file(age, 0o600, snapshot.ContentAge)}}),
			[]string{"not_checked critical backup directory /srv/bk"}, "only the first 1 entries"},
		{"BKP-04.files no directory", "BKP-04.files", &snapshot.Snapshot{}, []string{"not_checked critical backup files"}, "no backup directory given"},

		{"BKP-05.dirs private", "BKP-05.dirs", backupSnap(snapshot.BackupDir{Entries: []snapshot.BackupEntry{dirEntry("/srv/bk/s1", 0o700), file(age, 0o600, snapshot.ContentAge)}}),
			[]string{"pass high directory /srv/bk"}, "mode 0700, owner root"},
		{"BKP-05.dirs 0755 directory and a 0644 file", "BKP-05.dirs", backupSnap(snapshot.BackupDir{
			Dir:     snapshot.File{Path: "/srv/bk", Exists: true, IsDir: true, Mode: 0o755, Owner: "root"},
			Entries: []snapshot.BackupEntry{dirEntry("/srv/bk/s1", 0o700), file(age, 0o644, snapshot.ContentAge)}}),
			[]string{"fail medium directory /srv/bk", "fail medium file " + age}, "accessible by others"},
		{"BKP-05.dirs group-writable", "BKP-05.dirs", backupSnap(snapshot.BackupDir{Dir: snapshot.File{Path: "/srv/bk", Exists: true, IsDir: true, Mode: 0o770, Owner: "root"}}),
			[]string{"fail high directory /srv/bk"}, "writable by group or others"},
		{"BKP-05.dirs another owner", "BKP-05.dirs", backupSnap(snapshot.BackupDir{Entries: []snapshot.BackupEntry{{File: snapshot.File{Path: age, Exists: true, Mode: 0o600, UID: 1001, Owner: "mallory"}, Content: snapshot.ContentAge}}}),
			[]string{"fail medium file " + age, "pass high directory /srv/bk"}, ""},
		{"BKP-05.dirs symlinked directory is noted, the target checked", "BKP-05.dirs", backupSnap(snapshot.BackupDir{
			Dir:      snapshot.File{Path: "/srv/bk", Exists: true, Symlink: true, Error: "symlink to /mnt/bk", Owner: "root"},
			Resolved: "/mnt/bk", Target: &snapshot.File{Path: "/mnt/bk", Exists: true, IsDir: true, Mode: 0o700, Owner: "postgres"}}),
			[]string{"pass high directory /mnt/bk"}, "(/srv/bk is a symlink to /mnt/bk)"},
		{"BKP-05.dirs links inside are not followed", "BKP-05.dirs", backupSnap(snapshot.BackupDir{Entries: []snapshot.BackupEntry{{File: snapshot.File{Path: "/srv/bk/l", Exists: true, Symlink: true, Error: "symlink to /etc/shadow"}}}}),
			[]string{"not_checked high file /srv/bk/l", "pass high directory /srv/bk"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, fs := runRule(t, tc.rule, tc.snap)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("%s:\n%s\nwant\n%s", tc.rule, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if tc.says == "" {
				return
			}
			for _, f := range fs {
				if strings.Contains(f.Evidence+f.Reason, tc.says) {
					return
				}
			}
			t.Errorf("no finding says %q: %+v", tc.says, fs)
		})
	}
}

// Many plaintext files in one directory are one finding listing them.
func TestBackupPlaintextAggregates(t *testing.T) {
	var es []snapshot.BackupEntry
	for i := 0; i < 12; i++ {
		es = append(es, file("/srv/bk/d"+string(rune('a'+i))+".sql", 0o600, snapshot.ContentSQLDump))
	}
	_, fs := runRule(t, "BKP-04.files", backupSnap(snapshot.BackupDir{Entries: es}))
	if len(fs) != 1 || fs[0].Status != Fail || fs[0].Count != 12 || fs[0].Severity != Critical {
		t.Fatalf("%+v", fs)
	}
}

func TestBackupToolEncryption(t *testing.T) {
	walg := func(cs ...snapshot.WALGConfig) *snapshot.Snapshot {
		return &snapshot.Snapshot{Host: &snapshot.Host{WALG: cs}}
	}
	barman := func(files []snapshot.BarmanFile, servers ...snapshot.BarmanServer) *snapshot.Snapshot {
		return &snapshot.Snapshot{Host: &snapshot.Host{Barman: &snapshot.Barman{Files: files, Servers: servers}}}
	}
	conf := []snapshot.BarmanFile{{Path: "/etc/barman.conf"}}
	cases := []struct {
		name string
		snap *snapshot.Snapshot
		want []string
		says string
	}{
		{"nothing configured", &snapshot.Snapshot{Host: &snapshot.Host{}}, []string{"not_checked high backup repositories"}, "no pgBackRest, WAL-G or Barman"},
		{"pgBackRest unreadable", &snapshot.Snapshot{Host: &snapshot.Host{PgBackRest: &snapshot.PgBackRest{Config: "/etc/pgbackrest/pgbackrest.conf", Unreadable: "/etc/pgbackrest/pgbackrest.conf not readable (permission denied)"}}},
			[]string{"not_checked high pgBackRest /etc/pgbackrest/pgbackrest.conf"}, "not checked: /etc/pgbackrest/pgbackrest.conf not readable"},
		{"pgBackRest cipher", &snapshot.Snapshot{Host: &snapshot.Host{PgBackRest: &snapshot.PgBackRest{Config: "/etc/pgbackrest.conf", Repos: []snapshot.PgBackRestRepo{{Name: "repo1", CipherType: "aes-256-cbc"}, {Name: "repo2"}}}}},
			[]string{"fail high pgBackRest repo2", "pass high pgBackRest repo1"}, ""},
		{"WAL-G libsodium key", walg(snapshot.WALGConfig{Path: "/var/lib/postgresql/.walg.json", Kind: "json", Vars: []string{"WALG_LIBSODIUM_KEY", "WALG_S3_PREFIX"}, Encryption: []string{"WALG_LIBSODIUM_KEY"}},
			snapshot.WALGConfig{Path: "process 12 (postgres)", Kind: "process", Vars: []string{"WALG_S3_PREFIX"}}),
			[]string{"pass high WAL-G"}, "WALG_LIBSODIUM_KEY"},
		{"WAL-G without a key", walg(snapshot.WALGConfig{Path: "/etc/wal-g.d/env", Kind: "envdir", Vars: []string{"WALG_S3_PREFIX"}}),
			[]string{"fail high WAL-G"}, "uploaded in clear"},
		{"WAL-G server-side only", walg(snapshot.WALGConfig{Path: "/etc/wal-g.d/env", Kind: "envdir", Vars: []string{"WALG_S3_SSE"}, ServerSide: []string{"WALG_S3_SSE"}}),
			[]string{"pass high WAL-G"}, "storage provider holds the key"},
		{"WAL-G unreadable and keyless: not a failure", walg(snapshot.WALGConfig{Path: "/root/.walg.json", Kind: "json", Unreadable: "/root/.walg.json not readable (permission denied)"},
			snapshot.WALGConfig{Path: "process 12 (postgres)", Kind: "process", Vars: []string{"WALG_S3_PREFIX"}}),
			[]string{"not_checked high WAL-G /root/.walg.json"}, "not checked: /root/.walg.json not readable"},
		{"Barman without encryption", barman(conf, snapshot.BarmanServer{Name: "pg", Config: "/etc/barman.d/pg.conf:1", BackupMethod: "postgres"}),
			[]string{"fail high Barman server pg"}, "Barman encrypts nothing itself"},
		{"Barman gpg with rsync", barman(conf, snapshot.BarmanServer{Name: "pg", Config: "/etc/barman.d/pg.conf:1", Encryption: "gpg", EncryptionKeyID: true}),
			[]string{"fail high Barman server pg"}, "backup_method = rsync"},
		{"Barman gpg tar", barman(conf, snapshot.BarmanServer{Name: "pg", Config: "/etc/barman.d/pg.conf:1", Encryption: "gpg", EncryptionKeyID: true, BackupMethod: "postgres", BackupCompression: "gzip"}),
			[]string{"pass high Barman server pg"}, "writes each backup in clear first"},
		{"Barman unreadable file", barman([]snapshot.BarmanFile{{Path: "/etc/barman.d/x.conf", Unreadable: "/etc/barman.d/x.conf not readable (a FIFO)"}}),
			[]string{"not_checked high Barman /etc/barman.d/x.conf"}, "not checked"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, fs := runRule(t, "BKP-04", tc.snap)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("BKP-04:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if tc.says == "" {
				return
			}
			for _, f := range fs {
				if strings.Contains(f.Evidence+f.Reason, tc.says) {
					return
				}
			}
			t.Errorf("no finding says %q: %+v", tc.says, fs)
		})
	}
}

// A snapshot with backups survives its JSON form (collect, then audit
// --snapshot elsewhere) with the same verdicts.
func TestBackupsSnapshotRoundTrip(t *testing.T) {
	s := backupSnap(snapshot.BackupDir{Sets: []snapshot.BackupSet{bset("s1", time.Hour, true, true)},
		Entries: []snapshot.BackupEntry{file("/srv/bk/s1/app.dump.zst.age", 0o600, snapshot.ContentAge)}})
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back snapshot.Snapshot
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"BKP-01", "BKP-06", "BKP-06.verified", "BKP-04.files", "BKP-05.dirs"} {
		a, _ := runRule(t, id, s)
		z, _ := runRule(t, id, &back)
		if strings.Join(a, "\n") != strings.Join(z, "\n") || !strings.HasPrefix(a[0], "pass") {
			t.Errorf("%s: %v, after JSON %v", id, a, z)
		}
	}
}
