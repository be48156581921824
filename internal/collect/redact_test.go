package collect

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/pgconf"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// TestRedactSnapshotSecrets (issue #10 defect 13): no part of a password
// written in any way libpq accepts survives in a snapshot.
func TestRedactSnapshotSecrets(t *testing.T) {
	cases := []struct {
		name, value, secret, keep string
	}{
		{"primary_conninfo", `host=primary user=rep password=Part1\ Part2`, "Part", "host=primary user=rep"},
		{"primary_conninfo", `host=primary password='a b\'c' user=rep`, "a b", "user=rep"},
		{"primary_conninfo", "postgresql://rep:Le@kB6@primary/db", "kB6", "@primary/db"},
		{"primary_conninfo", "postgresql://rep:p%40ss@primary/db", "p%40ss", "rep:"},
		{"archive_command", "PGPASSWORD=Hunter2x pg_receivewal -d 'host=b' %p", "Hunter2x", "pg_receivewal"},
		{"myapp.password", "Hunter2x", "Hunter2x", ""},
		{"password_encryption", "scram-sha-256", "", "scram-sha-256"},
	}
	for _, c := range cases {
		s := &snapshot.Snapshot{Settings: map[string]snapshot.Setting{c.name: {Name: c.name, Value: c.value}},
			Config:       &pgconf.Config{Entries: []pgconf.Entry{{Name: c.name, Value: c.value, File: "postgresql.conf", Line: 1}}},
			RoleSettings: []snapshot.DBRoleSetting{{Role: "app", Settings: []string{c.name + "=" + c.value}}}}
		redact(s)
		b, _ := json.Marshal(s)
		out := string(b)
		if c.secret != "" && strings.Contains(out, c.secret) {
			t.Errorf("%s = %q: the snapshot keeps %q: %s", c.name, c.value, c.secret, out)
		}
		if c.keep != "" && !strings.Contains(out, c.keep) {
			t.Errorf("%s = %q: the snapshot lost %q: %s", c.name, c.value, c.keep, out)
		}
	}
}
