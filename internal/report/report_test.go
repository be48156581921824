package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenSnapshot is a small, fixed audit target: a few weaknesses of each
// kind, and things the audit role could not see.
func goldenSnapshot() *snapshot.Snapshot {
	s := &snapshot.Snapshot{FormatVersion: snapshot.FormatVersion, Tool: "pgaegis", ToolVersion: "test",
		CollectedAt: time.Date(2026, 11, 22, 8, 30, 0, 0, time.UTC),
		Target:      snapshot.Target{Description: "host=db.example.com port=5432 user=auditor dbname=postgres", Live: true},
		Server:      &snapshot.Server{Version: "15.18", VersionNum: 150018, CurrentUser: "auditor", ReadAllSettings: true}}
	for k, v := range map[string]string{"ssl": "off", "listen_addresses": "*", "password_encryption": "scram-sha-256",
		"log_connections": "on", "log_disconnections": "off", "log_statement": "ddl", "log_line_prefix": "%m [%p] %u@%d %r %a ",
		"logging_collector": "on", "shared_preload_libraries": "", "unix_socket_permissions": "0770", "ssl_min_protocol_version": "TLSv1.2",
		"ssl_ciphers": "HIGH:!aNULL", "log_file_mode": "0600", "log_min_messages": "warning", "log_min_error_statement": "error",
		"debug_print_parse": "off", "debug_print_rewritten": "off", "debug_print_plan": "off"} {
		s.SetSetting(snapshot.Setting{Name: k, Value: v, Source: "configuration file", File: "/etc/postgresql/15/main/postgresql.conf", Line: 42, Origin: snapshot.FromServer, Context: "sighup"})
	}
	f := hba.Parse("/etc/postgresql/15/main/pg_hba.conf", []byte("local all postgres peer\nhost all all 0.0.0.0/0 md5\nhostssl replication all 10.0.0.0/8 scram-sha-256\n"), hba.Options{})
	s.HBA = &snapshot.HBA{Source: "file", Path: f.Path, Rules: f.Rules}
	s.Roles = []snapshot.Role{{OID: 10, Name: "postgres", Superuser: true, CanLogin: true}, {OID: 16384, Name: "app", CanLogin: true}}
	// Enough service roles without a connection limit that NET-05 reports
	// them as one finding listing its objects, so every writer shows that case.
	for i := 1; i <= 12; i++ {
		s.Roles = append(s.Roles, snapshot.Role{OID: uint32(16400 + i), Name: fmt.Sprintf("svc%02d", i), CanLogin: true, ConnLimit: -1})
	}
	s.AddGap(snapshot.GapPasswords, "pg_authid is readable only by superusers")
	s.AddGap(snapshot.GapFiles, "the server's data directory is not on this host")
	return s
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(want, got) {
		wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
		for i := 0; i < len(wl) || i < len(gl); i++ {
			var w, g string
			if i < len(wl) {
				w = wl[i]
			}
			if i < len(gl) {
				g = gl[i]
			}
			if w != g {
				t.Errorf("%s differs from the golden file at line %d (run go test ./internal/report -update after checking the change):\nwant: %s\ngot:  %s", name, i+1, w, g)
				return
			}
		}
	}
}

func build(t *testing.T) *Report {
	defer func(f func() time.Time) { rules.Now = f }(rules.Now)
	rules.Now = func() time.Time { return time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC) }
	s := goldenSnapshot()
	return Build(s, rules.Run(s), rules.High)
}

func TestTextGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, build(t), TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "\x1b[") {
		t.Error("colour codes without a terminal")
	}
	golden(t, "audit.txt", b.Bytes())
}

func TestJSONGolden(t *testing.T) {
	var b bytes.Buffer
	r := build(t)
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "audit.json", b.Bytes())
	// The contract: every finding carries the documented fields.
	var doc struct {
		Findings []map[string]any `json:"findings"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, f := range doc.Findings {
		for _, k := range []string{"rule", "status", "severity", "title", "object", "references"} {
			if _, ok := f[k]; !ok && !(k == "object" && f["status"] == "pass") {
				t.Errorf("finding %v lacks %q", f["rule"], k)
			}
		}
		if f["status"] == "fail" && (f["fix"] == nil || f["evidence"] == nil) {
			t.Errorf("failing finding %v lacks fix or evidence", f["rule"])
		}
		if f["status"] == "not_checked" && f["reason"] == nil {
			t.Errorf("not_checked finding %v lacks a reason", f["rule"])
		}
	}
	if !r.Failed() {
		t.Error("report with high findings should fail at --fail-on high")
	}
}
