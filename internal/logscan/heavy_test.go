package logscan

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// The heavy shape is what a security-minded site logs: pgbench -M prepared
// on PostgreSQL 15 with log_statement = all (an execute line and a
// DETAIL: parameters line per statement), pgaudit.log = 'ddl,role,write'
// (an AUDIT: SESSION line per write), connection logging, and a scripted
// attack (30 logins for roles that do not exist, CREATE ROLE ... SUPERUSER
// PASSWORD, ALTER ROLE PASSWORD, COPY TO PROGRAM, pg_read_file). The
// records in testdata/heavy are copied from such a server's three log
// files: head.* is the start (setup and the attack), body.* sixty records
// of the benchmark traffic that follows, repeated to any size.

const heavyPrefix = "%m [%p] %q%u@%d from %h "

var heavyFormats = []struct {
	name string
	file string
	f    Format
}{{"Stderr", "stderr.log", Stderr}, {"CSV", "csvlog.csv", CSV}, {"JSON", "jsonlog.json", JSON}}

func readGz(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeHeavy writes a heavy-shape log of at least size bytes and returns
// its path.
func writeHeavy(t testing.TB, dir, file string, size int) string {
	t.Helper()
	head := readGz(t, filepath.Join("testdata", "heavy", "head."+file+".gz"))
	body := readGz(t, filepath.Join("testdata", "heavy", "body."+file+".gz"))
	var buf bytes.Buffer
	buf.Grow(size + len(body))
	buf.Write(head)
	for buf.Len() < size {
		buf.Write(body)
	}
	p := filepath.Join(dir, "heavy."+file)
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func scanHeavy(t testing.TB, path string, f Format) ([]Event, Stats) {
	t.Helper()
	o := Options{Format: f}
	if f == Stderr {
		p, err := CompilePrefix(heavyPrefix)
		if err != nil {
			t.Fatal(err)
		}
		o.Prefix = p
	}
	an, st, err := Scan([]string{path}, o)
	if err != nil {
		t.Fatal(err)
	}
	return an.Events(), st
}

// TestHeavyShapeEvents: the three formats of the same traffic give the
// same events, and the attack is found in each.
func TestHeavyShapeEvents(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for _, hf := range heavyFormats {
		evs, st := scanHeavy(t, writeHeavy(t, dir, hf.file, 1<<20), hf.f)
		if len(st.Errors) > 0 {
			t.Errorf("%s: errors: %v", hf.name, st.Errors)
		}
		var got []string
		for _, e := range evs {
			got = append(got, e.Kind+" "+e.Role+" "+e.Sample)
		}
		sort.Strings(got)
		if want == nil {
			want = got
			for _, k := range []string{"superuser-granted", "copy-program", "secret-in-log", "unknown-role", "brute-force", "password-spraying"} {
				found := false
				for _, e := range evs {
					found = found || e.Kind == k
				}
				if !found {
					t.Errorf("%s: no %s event in %v", hf.name, k, got)
				}
			}
			continue
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d events, stderr gave %d:\n%v\n%v", hf.name, len(got), len(want), got, want)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: event %q, stderr gave %q", hf.name, got[i], want[i])
			}
		}
	}
}

// BenchmarkScanHeavy reports MB/s of a whole scan (read, split, parse on
// all cores, merge, analyse) of a 64 MB heavy-shape log in each format.
func BenchmarkScanHeavy(b *testing.B) {
	dir := b.TempDir()
	for _, hf := range heavyFormats {
		path := writeHeavy(b, dir, hf.file, 64<<20)
		st, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(hf.name, func(b *testing.B) {
			b.SetBytes(st.Size())
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				scanHeavy(b, path, hf.f)
			}
		})
		// The floor on the same file: read it and count its lines, on
		// one core (the scan's MB/s over this is the ratio to watch).
		b.Run(hf.name+"/read-floor", func(b *testing.B) {
			b.SetBytes(st.Size())
			buf := make([]byte, chunkSize)
			for i := 0; i < b.N; i++ {
				f, err := os.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				lines := 0
				for {
					n, err := f.Read(buf)
					lines += bytes.Count(buf[:n], []byte{'\n'})
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				f.Close()
				if lines == 0 {
					b.Fatal("no lines")
				}
			}
		})
	}
}

// BenchmarkParseHeavy is the per-chunk parse alone, on one core.
func BenchmarkParseHeavy(b *testing.B) {
	p, err := CompilePrefix(heavyPrefix)
	if err != nil {
		b.Fatal(err)
	}
	for _, hf := range heavyFormats {
		body := readGz(b, filepath.Join("testdata", "heavy", "body."+hf.file+".gz"))
		data := bytes.Repeat(body, (1<<20)/len(body))
		b.Run(hf.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				parseChunk(data, hf.f, p)
			}
		})
	}
}
