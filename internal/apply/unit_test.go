package apply

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/plan"
)

func TestParsePath(t *testing.T) {
	cases := []struct {
		in   string
		want Path
		err  bool
	}{
		{in: "app@shop from 10.1.2.3", want: Path{Role: "app", Database: "shop", Address: "10.1.2.3"}},
		{in: "app@shop from 10.1.2.3 ssl", want: Path{Role: "app", Database: "shop", Address: "10.1.2.3", SSL: true}},
		{in: "jane@corp.example@shop from ::1 SSL", want: Path{Role: "jane@corp.example", Database: "shop", Address: "::1", SSL: true}},
		{in: "replicator@replication from 10.0.0.7", want: Path{Role: "replicator", Database: "replication", Address: "10.0.0.7"}},
		{in: "postgres@postgres local", want: Path{Role: "postgres", Database: "postgres", Local: true}},
		{in: "app@shop from db.example.com", err: true},
		{in: "app@shop from 10.1.2.3 tls", err: true},
		{in: "app@shop local ssl", err: true},
		{in: "app from 10.1.2.3", err: true},
		{in: "@shop local", err: true},
		{in: "app@ local", err: true},
		{in: "app@shop", err: true},
		{in: "", err: true},
	}
	for _, c := range cases {
		got, err := ParsePath(c.in)
		if c.err {
			if err == nil {
				t.Errorf("ParsePath(%q) = %+v, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParsePath(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestSplitList(t *testing.T) {
	cases := map[string][]string{
		"pgaudit,auth_delay":     {"pgaudit", "auth_delay"},
		" pgaudit , auth_delay ": {"pgaudit", "auth_delay"},
		`"pgaudit,auth_delay"`:   {"pgaudit,auth_delay"},
		`"a""b", c`:              {`a"b`, "c"},
		"":                       nil,
		`"$user", public`:        {"$user", "public"},
		`'quoted; DROP', "x y"`:  {`'quoted; DROP'`, "x y"},
	}
	for in, want := range cases {
		if got := splitList(in); !reflect.DeepEqual(got, want) {
			t.Errorf("splitList(%q) = %q, want %q", in, got, want)
		}
	}
}

// AUTH-14: ALTER SYSTEM SET shared_preload_libraries = 'a,b' stores one
// library named "a,b"; a list setting gets one literal per item.
func TestAlterSQL(t *testing.T) {
	cases := []struct {
		sc   plan.SettingChange
		want string
	}{
		{plan.SettingChange{Name: "shared_preload_libraries", To: "pgaudit,auth_delay"}, `ALTER SYSTEM SET shared_preload_libraries = 'pgaudit', 'auth_delay'`},
		{plan.SettingChange{Name: "shared_preload_libraries", To: ""}, `ALTER SYSTEM RESET shared_preload_libraries`},
		{plan.SettingChange{Name: "auth_delay.milliseconds", To: "500"}, `ALTER SYSTEM SET auth_delay.milliseconds = '500'`},
		{plan.SettingChange{Name: "log_line_prefix", To: "%m [%p] it's"}, `ALTER SYSTEM SET log_line_prefix = '%m [%p] it''s'`},
		{plan.SettingChange{Name: "unix_socket_permissions", To: "0770"}, `ALTER SYSTEM SET unix_socket_permissions = '0770'`},
		{plan.SettingChange{Name: "search_path", To: `"$user", public`}, `ALTER SYSTEM SET search_path = '$user', 'public'`},
	}
	for _, c := range cases {
		if got := alterSQL(c.sc); got != c.want {
			t.Errorf("alterSQL(%+v) = %s, want %s", c.sc, got, c.want)
		}
	}
}

func TestListenKeeps(t *testing.T) {
	cases := []struct {
		v, addr string
		want    bool
	}{
		{"*", "", true},
		{"localhost", "127.0.0.1", true},
		{"10.0.0.5", "127.0.0.1", false},
		{"10.0.0.5, 127.0.0.1", "127.0.0.1", true},
		{"0.0.0.0", "10.0.0.5", true},
		{"0.0.0.0", "::1", false},
		{"", "127.0.0.1", false},
	}
	for _, c := range cases {
		if got := listenKeeps(c.v, c.addr); got != c.want {
			t.Errorf("listenKeeps(%q, %q) = %v", c.v, c.addr, got)
		}
	}
}

func TestHistoryNewestFirst(t *testing.T) {
	root := t.TempDir()
	if h, err := History(root); err != nil || len(h) != 0 {
		t.Fatalf("empty root: %v %v", h, err)
	}
	if h, err := History(filepath.Join(root, "missing")); err != nil || len(h) != 0 {
		t.Fatalf("missing root: %v %v", h, err)
	}
	for i, id := range []string{"20260101-000000-aaaa", "20260301-000000-bbbb", "20260201-000000-cccc"} {
		j, err := plan.CreateJournal(root, &plan.Plan{ID: id, Steps: make([]plan.Step, i+1)})
		if err != nil {
			t.Fatal(err)
		}
		st, _ := j.State()
		st.Created, st.State = time.Date(2026, time.Month(1+[]int{0, 2, 1}[i]), 1, 0, 0, 0, 0, time.UTC), plan.StateApplied
		if err := j.WriteState(st); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(root, "not-a-journal"), 0o700)
	h, err := History(root)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range h {
		ids = append(ids, e.ID)
	}
	if want := []string{"20260301-000000-bbbb", "20260201-000000-cccc", "20260101-000000-aaaa"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("history order %v, want %v", ids, want)
	}
}

func TestDefaultJournalRoot(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/var/state")
	if got := DefaultJournalRoot(); got != "/var/state/pgaegis/plans" {
		t.Errorf("with XDG_STATE_HOME: %s", got)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "/home/x")
	if got := DefaultJournalRoot(); got != "/home/x/.local/state/pgaegis/plans" {
		t.Errorf("without: %s", got)
	}
}

func TestLockDataDir(t *testing.T) {
	in := serverInfo{dataDir: t.TempDir(), onHost: true}
	unlock, err := lockDataDir(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockDataDir(in); err == nil {
		t.Errorf("a second lock on the same data directory was granted")
	}
	unlock()
	unlock2, err := lockDataDir(in)
	if err != nil {
		t.Errorf("after unlock: %v", err)
	} else {
		unlock2()
	}
}
