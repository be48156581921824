package pgconf

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// pg_file_settings re-reads postgresql.conf (and its includes, and
// postgresql.auto.conf) on every query, so generated files can be checked
// against the server's own parser and its reload logic without reloading.

// A generated line is a name, a separator, a value and a tail, each drawn
// so that most lines parse and the rest break in every way the lexer and
// the reload can.
var (
	confNames = map[string][]string{ // by the kind of value drawn for them
		"bool":     {"log_disconnections", "log_checkpoints", "LOG_DISCONNECTIONS", "log_hostname", "allow_alter_system", "md5_password_warnings", "log_connections"},
		"mem":      {"work_mem", "maintenance_work_mem", "Work_Mem", "temp_file_limit"},
		"time":     {"statement_timeout", "log_min_duration_statement", "authentication_timeout", "idle_session_timeout", "transaction_timeout"},
		"real":     {"random_page_cost", "cpu_tuple_cost", "seq_page_cost"},
		"enum":     {"log_statement", "log_min_messages", "password_encryption", "log_error_verbosity"},
		"string":   {"application_name", "log_line_prefix", "cluster_name", "ssl_tls13_ciphers", "ssl_ecdh_curve", "ssl_groups"},
		"list18":   {"log_connections"},
		"postmast": {"max_connections", "shared_buffers", "port"},
		"internal": {"block_size", "server_version", "lc_collate"},
		"custom":   {"custom.opt", "myext.val", "Custom.Opt", "x.y", "a1._b"},
		"unknown":  {"work_mme", "bogus_param", "db_user_namespace", "stats_temp_directory", "vacuum_defer_cleanup_age", "promote_trigger_file", "sort_mem", "force_parallel_mode", "SSL_ECDH_CURVE"},
	}
	confKinds  = []string{"bool", "bool", "mem", "mem", "time", "time", "real", "enum", "enum", "string", "string", "list18", "postmast", "internal", "custom", "unknown"}
	confValues = map[string][]string{
		"bool":     {"on", "off", "true", "false", "yes", "no", "1", "0", "'on'", "'of'", "t", "'y'", "maybe", "'2'", "' on'", "On", "TRUE"},
		"mem":      {"4MB", "'8MB'", "16384", "1GB", "'1 GB'", "64kB", "'64 kB'", "0x100", "010", "1.5MB", "'1.5MB'", "4mb", "-1", "1", "'abc'", "4TB", "1048576kB", "'4MB '", "1e3", "+2048"},
		"time":     {"0", "'1min'", "250", "-1", "1s", "'100ms'", "'2h'", "1d", "'1 min'", "10us", "'1.5s'", "5m", "'abc'", "-2", "99999999999", "2147483647", "'0x10'"},
		"real":     {"1.1", "4.", ".5", "1.5e0", "+2", "0x1", "'1e1'", "-1", "abc", "'nan'", "1e400", "'4 '", "0.01", "1e-3"},
		"enum":     {"ddl", "'mod'", "all", "none", "warning", "DEBUG1", "'Error'", "scram-sha-256", "md5", "terse", "'Verbose'", "default", "on", "off", "bogus", "''"},
		"string":   {"'%m [%p] %q%u@%d '", "'it''s'", `'tab\there'`, `'oct\101\102'`, `'back\\slash'`, "'new\\nline'", "plain", "a-b:c/d", "'HIGH:!aNULL'", "''", "'TLS_AES_256_GCM_SHA384'", "'prime256v1'", `'a\'b'`, "'x\\q'", "12", "1.5", "'ünï'"},
		"list18":   {"'receipt,authentication'", "'all'", "''", "'receipt'", "'Receipt, Authorization'", "'setup_durations'", "on", "off", "'bogus'", "'receipt,bogus'", "'all,receipt'", "'on,receipt'", "' all '", "'\"receipt\"'", "'receipt,,all'"},
		"postmast": {"100", "'100'", "50", "16384", "128MB", "'1MB'", "5432", "1"},
		"internal": {"8192", "'8kB'", "'15'", "C"},
		"custom":   {"'x'", "12", "a-b", "''", "'it''s'"},
		"unknown":  {"1", "'x'", "on"},
	}
	confSeps  = []string{" = ", "=", " ", "\t=\t", " =", "= "}
	confTails = []string{"", "", "", " # trailing comment", "\t", "#x"}
	// Lines that are not name = value, and lines that break.
	confSpecials = []string{
		"", "  # indented comment", "\t", "# only a comment", "#include 'nothing.conf'",
		"= 5", "work_mem =", "work_mem = 'unterminated", "work_mem = 4 MB", "work_mem = a.b", "1abc = 2",
		"work_mem = /tmp", "x.y.z = 1", "work_mem = 'a' 'b'", "work_mem == 4", "log_statement = all;", "'quoted' = 1",
		"work_mem = 'a\\", "work_mem 'x' y", "é = 1", "work_mem = -", "work_mem = .", "work_mem = 1.2.3", "-x = 1",
	}
	confIncludes = []string{
		"include 'inc1.conf'", "include_if_exists 'missing.conf'", "include_if_exists 'inc1.conf'",
		"include_dir 'conf.d'", "include 'missing.conf'", "include 'sub/inc2.conf'", "include = ''", "INCLUDE 'inc1.conf'",
		"include '  '", "include_dir ''", "include_dir ' '", "include_dir 'nodir'", "include_if_exists ''", "include_dir 'conf.d/'",
		"include_if_exists = 'sub/inc2.conf'", "Include_Dir 'conf.d'", "include inc1.conf", "include 'conf.d'",
	}
)

func genLine(rng *rand.Rand) string {
	kind := confKinds[rng.Intn(len(confKinds))]
	names, values := confNames[kind], confValues[kind]
	v := values[rng.Intn(len(values))]
	if kind == "postmast" && rng.Intn(2) == 0 {
		// The running values, spelled differently: these apply.
		v = []string{"max_connections = 100", "shared_buffers = '128MB'", "shared_buffers 16384", "max_connections='0x64'"}[rng.Intn(4)]
		return v + confTails[rng.Intn(len(confTails))]
	}
	return names[rng.Intn(len(names))] + confSeps[rng.Intn(len(confSeps))] + v + confTails[rng.Intn(len(confTails))]
}

func genConf(rng *rand.Rand, n int, includes bool) string {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		switch r := rng.Intn(20); {
		case r < 2:
			sb.WriteString(confSpecials[rng.Intn(len(confSpecials))])
		case r < 4 && includes:
			sb.WriteString(confIncludes[rng.Intn(len(confIncludes))])
		default:
			sb.WriteString(genLine(rng))
		}
		if i < n-1 || rng.Intn(5) != 0 { // sometimes no final newline
			sb.WriteString(map[bool]string{true: "\r\n", false: "\n"}[rng.Intn(15) == 0])
		}
	}
	return sb.String()
}

type fileRow struct {
	seq     int
	file    string
	line    int
	name    string
	setting string
	applied bool
	err     string
}

func (r fileRow) String() string {
	return fmt.Sprintf("%d %s:%d %s=%q applied=%v error=%q", r.seq, r.file, r.line, r.name, r.setting, r.applied, r.err)
}

// expectedRows is what this package says pg_file_settings shows.
func expectedRows(cfg *Config, st Settlement) []fileRow {
	var out []fileRow
	for i, e := range cfg.Entries {
		out = append(out, fileRow{e.Seq, e.File, e.Line, e.Name, e.Value, st.Entries[i].Applied, st.Entries[i].Error})
	}
	for _, e := range cfg.Errors {
		out = append(out, fileRow{seq: e.Seq, file: e.File, line: e.Line, err: e.Server})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	for _, r := range st.Restart {
		out = append(out, fileRow{seq: len(out) + 1, err: r})
	}
	return out
}

func TestConfParserAgreesWithServer(t *testing.T) {
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		start := time.Now()
		srv := pgtest.StartMajor(t, major, localpg.Options{})
		ctx := pgtest.Ctx(t)
		conn := pgtest.Conn(t, srv, "postgres")
		server := Server{Major: major, Current: map[string]string{}, FromFile: map[string]bool{}, Placeholders: map[string]bool{}}
		rows, err := conn.Query(ctx, `SELECT name, setting, source FROM pg_settings WHERE context = 'postmaster'`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n, v, src string
			if err := rows.Scan(&n, &v, &src); err != nil {
				t.Fatal(err)
			}
			server.Current[strings.ToLower(n)] = v
			if src == "configuration file" {
				server.FromFile[n] = true
			}
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
		dd := srv.DataDir
		mainPath := filepath.Join(dd, "postgresql.conf")
		for _, d := range []string{"conf.d", "sub", "conf.d/skipdir.conf"} {
			os.MkdirAll(filepath.Join(dd, d), 0o755)
			srv.Chown(filepath.Join(dd, d))
		}
		cases := 420
		if testing.Short() {
			cases = 60
		}
		rng := rand.New(rand.NewSource(int64(1122 + major)))
		compared, disagree := 0, 0
		for i := 0; i < cases; i++ {
			inc1 := genConf(rng, rng.Intn(4), rng.Intn(4) == 0)
			if rng.Intn(12) == 0 {
				inc1 += "\ninclude 'inc1.conf'\n" // direct recursion
			}
			files := map[string]string{
				"postgresql.conf":      genConf(rng, 1+rng.Intn(10), true),
				"inc1.conf":            inc1,
				"sub/inc2.conf":        "include '../inc1.conf'\n" + genConf(rng, rng.Intn(3), false),
				"conf.d/b.conf":        genConf(rng, rng.Intn(3), false),
				"conf.d/a.conf":        genConf(rng, rng.Intn(3), false),
				"conf.d/.hidden.conf":  "work_mem = 1MB\n",
				"conf.d/notes.txt":     "work_mem = 2MB\n",
				"postgresql.auto.conf": "# Do not edit this file manually!\n" + genConf(rng, rng.Intn(3), false),
			}
			for name, content := range files {
				if err := srv.WriteFile(filepath.Join(dd, name), content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			rows, err := conn.Query(ctx, `SELECT seqno, coalesce(sourcefile,''), coalesce(sourceline,0), coalesce(name,''),
				coalesce(setting,''), applied, coalesce(error,'') FROM pg_file_settings ORDER BY seqno`)
			if err != nil {
				t.Fatal(err)
			}
			var got []fileRow
			for rows.Next() {
				var r fileRow
				if err := rows.Scan(&r.seq, &r.file, &r.line, &r.name, &r.setting, &r.applied, &r.err); err != nil {
					t.Fatal(err)
				}
				got = append(got, r)
			}
			if rows.Err() != nil {
				t.Fatal(rows.Err())
			}
			cfg, err := Load(mainPath, Options{DataDir: dd, StopAtFirstError: true, Major: major})
			if err != nil {
				t.Fatal(err)
			}
			want := expectedRows(cfg, cfg.Settle(server))
			// The rows with no file come last, in the order of a hash
			// table from 16 on: compared as a set.
			sortTail := func(rs []fileRow) {
				k := len(rs)
				for k > 0 && rs[k-1].file == "" {
					k--
				}
				tail := rs[k:]
				sort.Slice(tail, func(i, j int) bool { return tail[i].err < tail[j].err })
				for j := range tail {
					tail[j].seq = k + j + 1
				}
			}
			sortTail(got)
			sortTail(want)
			compared += len(got)
			n := len(got)
			if len(want) > n {
				n = len(want)
			}
			for j := 0; j < n; j++ {
				var g, w fileRow
				if j < len(got) {
					g = got[j]
				}
				if j < len(want) {
					w = want[j]
				}
				if g != w {
					disagree++
					if disagree <= 8 {
						t.Errorf("pg%d case %d row %d:\nserver: %v\nours:   %v\nall server rows:\n%s\nfiles:\n%s", major, i, j, g, w, joinRows(got), dump(files))
					}
				}
			}
		}
		t.Logf("ORACLE conf-parse pg%d: cases=%d disagreements=%d seconds=%.1f", major, compared, disagree, time.Since(start).Seconds())
	})
}

func joinRows(rs []fileRow) string {
	var sb strings.Builder
	for _, r := range rs {
		sb.WriteString("  " + r.String() + "\n")
	}
	return sb.String()
}

func dump(files map[string]string) string {
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var sb strings.Builder
	for _, n := range names {
		fmt.Fprintf(&sb, "--- %s\n%s\n", n, files[n])
	}
	return sb.String()
}
