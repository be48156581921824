package localpg_test

import (
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// Every installed major starts, and is the major it was asked for.
func TestEveryMajorStarts(t *testing.T) {
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		s := pgtest.StartMajor(t, major, localpg.Options{})
		ctx := pgtest.Ctx(t)
		c, err := s.Connect(ctx, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var num, rules int
		if err := c.QueryRow(ctx, `SELECT current_setting('server_version_num')::int, (SELECT count(*) FROM pg_hba_file_rules)`).Scan(&num, &rules); err != nil {
			t.Fatal(err)
		}
		if num/10000 != major || s.Major != major {
			t.Errorf("asked for %d, got server_version_num %d (binaries say %s)", major, num, s.Version)
		}
		if rules == 0 {
			t.Error("pg_hba_file_rules is empty")
		}
		t.Logf("PostgreSQL %s from %s", s.Version, s.BinDir)
	})
}

func TestFindBinDirNeverSubstitutesAMajor(t *testing.T) {
	if _, err := localpg.FindBinDir("12"); err == nil {
		t.Error("FindBinDir(12) found binaries; 12 is not installed here")
	}
	if _, err := localpg.FindBinDir("x"); err == nil {
		t.Error("FindBinDir(x) accepted a non-version")
	}
}
