package collect

import (
	"path/filepath"
	"testing"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// The planner may only add installed libraries to
// shared_preload_libraries and turn ssl on with the files in place: both
// are collected through the server (superuser) and from the host.
func TestLibrariesAndTLSFiles(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := pgtest.Ctx(t)
	for _, c := range []struct {
		name   string
		o      Options
		source string
	}{
		{"through the server", Options{Conn: srv.ConnConfig("postgres"), NoFiles: true, NoProbe: true}, "pg_ls_dir"},
		{"files only", Options{DataDir: srv.DataDir}, "filesystem"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Collect(ctx, c.o)
			if err != nil {
				t.Fatal(err)
			}
			if s.Libraries == nil || s.Libraries.Source != c.source {
				t.Fatalf("libraries: %+v", s.Libraries)
			}
			for _, lib := range []string{"auth_delay", "passwordcheck", "pgaudit", "$libdir/pgaudit"} {
				if has, known := s.Libraries.Has(lib); !has || !known {
					t.Errorf("%s not seen in %s", lib, s.Libraries.Dir)
				}
			}
			if has, known := s.Libraries.Has("credcheck"); has || !known {
				t.Errorf("credcheck: has %v known %v", has, known)
			}
			tf := s.TLSFiles
			if tf == nil || tf.CertFile != filepath.Join(srv.DataDir, "server.crt") || tf.KeyFile != filepath.Join(srv.DataDir, "server.key") {
				t.Fatalf("tls files: %+v", tf)
			}
			if tf.CertExists || tf.KeyExists {
				t.Errorf("no certificate was issued, yet: %+v", tf)
			}
		})
	}
}
