package backup

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// TestBackupSpeed (PGAEGIS_BACKUP_SPEED=SCALE, off by default: minutes)
// times Backup against `pg_dump -Fc -Z0 > /dev/null` of one pgbench
// database in the same run: the price of parsing, zstd and age.
func TestBackupSpeed(t *testing.T) {
	scale := os.Getenv("PGAEGIS_BACKUP_SPEED")
	if scale == "" {
		t.Skip("set PGAEGIS_BACKUP_SPEED=SCALE (20 is about 300 MB) to time a backup")
	}
	e := newEnvOn(t, pgtest.Start(t, localpg.Options{}))
	e.exec(t, "postgres", "create database bench")
	pg := func(prog string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(pg15bin, prog), append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(e.srv.Port), "-U", e.srv.AdminUser}, args...)...)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+e.srv.Password)
		return cmd
	}
	if out, err := pg("pgbench", "-i", "-q", "-s", scale, "bench").CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v: %s", err, out)
	}
	var size int64
	if err := pgtest.Conn(t, e.srv, "bench").QueryRow(pgtest.Ctx(t), "select pg_database_size('bench')").Scan(&size); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		t0 := time.Now()
		cmd := pg("pg_dump", "-Fc", "-Z0", "-d", "bench")
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout = devnull // a file: pg_dump writes straight to it
		err = cmd.Run()
		devnull.Close()
		if err != nil {
			t.Fatal(err)
		}
		plain := time.Since(t0)
		t0 = time.Now()
		e.out = t.TempDir()
		res, err := Backup(pgtest.Ctx(t), e.options("bench"))
		if err != nil {
			t.Fatal(err)
		}
		ours := time.Since(t0)
		f := res.Manifest.Databases[0].Files[0]
		t.Logf("round %d: database %d MB, archive %d MB -> sealed %d MB; pg_dump -Fc -Z0 >/dev/null %.1f s (%.0f MB/s), Backup %.1f s (%.0f MB/s), ratio %.2f",
			round, size>>20, f.PlainBytes>>20, f.CipherBytes>>20, plain.Seconds(), float64(f.PlainBytes)/(1<<20)/plain.Seconds(),
			ours.Seconds(), float64(f.PlainBytes)/(1<<20)/ours.Seconds(), ours.Seconds()/plain.Seconds())
	}
}
