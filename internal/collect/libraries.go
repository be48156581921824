package collect

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// The planner may only put into shared_preload_libraries what the server
// can load (a missing library stops the next start), and may only turn
// ssl on when the certificate and key are there: what is installed and
// what exists is collected here, through the server (superuser) or from
// the host's file system.

// readLibrariesLive lists $libdir and checks the TLS files through the
// server. Without superuser (pg_config and pg_ls_dir are superuser-only
// by default) nothing is recorded: unknown, never "nothing installed".
func readLibrariesLive(ctx context.Context, se *session, s *snapshot.Snapshot) {
	if s.Server == nil || !s.Server.Superuser {
		return
	}
	var libs *snapshot.Libraries
	err := se.optional(ctx, func(tx pgx.Tx) error {
		var dir string
		if err := tx.QueryRow(ctx, `SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'`).Scan(&dir); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT f FROM pg_ls_dir($1) AS f WHERE f LIKE '%.so'`, dir)
		if err != nil {
			return err
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		libs = &snapshot.Libraries{Dir: dir, Names: libNames(names), Source: "pg_ls_dir"}
		return nil
	})
	if err == nil {
		s.Libraries = libs
	}
	cert, key := settingValue(s, "ssl_cert_file"), settingValue(s, "ssl_key_file")
	if cert == "" || key == "" {
		return
	}
	var tf snapshot.TLSFiles
	err = se.optional(ctx, func(tx pgx.Tx) error {
		// Relative names are relative to the data directory, for
		// pg_stat_file as for the server.
		return tx.QueryRow(ctx, `SELECT (pg_stat_file($1, true)).size IS NOT NULL, (pg_stat_file($2, true)).size IS NOT NULL`,
			cert, key).Scan(&tf.CertExists, &tf.KeyExists)
	})
	if err == nil {
		dd := settingValue(s, "data_directory")
		tf.CertFile, tf.KeyFile, tf.Source = inDataDir(dd, cert), inDataDir(dd, key), "pg_stat_file"
		s.TLSFiles = &tf
	}
}

// readLibraryFiles lists the library directory found by statServerFiles
// and stats the TLS files, on the host, unless the server already told.
func readLibraryFiles(s *snapshot.Snapshot, dataDir string) {
	if s.Libraries == nil {
		for _, d := range s.FilesOfKind(snapshot.KindLibDir) {
			ents, err := os.ReadDir(d.Path)
			if err != nil {
				continue
			}
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			s.Libraries = &snapshot.Libraries{Dir: d.Path, Names: libNames(names), Source: "filesystem"}
		}
	}
	if s.TLSFiles != nil || dataDir == "" {
		return
	}
	cert, key := settingValue(s, "ssl_cert_file"), settingValue(s, "ssl_key_file")
	if cert == "" {
		cert = "server.crt"
	}
	if key == "" {
		key = "server.key"
	}
	tf := snapshot.TLSFiles{CertFile: inDataDir(dataDir, cert), KeyFile: inDataDir(dataDir, key), Source: "filesystem"}
	_, errC := os.Stat(tf.CertFile)
	_, errK := os.Stat(tf.KeyFile)
	tf.CertExists, tf.KeyExists = errC == nil, errK == nil
	s.TLSFiles = &tf
}

func inDataDir(dataDir, p string) string {
	if p == "" || filepath.IsAbs(p) || dataDir == "" {
		return p
	}
	return filepath.Join(dataDir, p)
}

// libNames keeps the .so files, without the suffix, sorted.
func libNames(files []string) []string {
	var out []string
	for _, f := range files {
		if n, ok := strings.CutSuffix(f, ".so"); ok && n != "" {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
