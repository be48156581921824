package backupset

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDumpFileName(t *testing.T) {
	names := []string{"app", "a/b", "..", ".", ".hidden", "x y", "日本", "a.part2", "a%2E", "", "A-b_c"}
	seen := map[string]string{}
	for _, n := range names {
		f := DumpFileName(n, 0)
		if strings.ContainsAny(f, "/\x00 ") || strings.HasPrefix(f, ".") || !strings.HasSuffix(f, ".dump.zst.age") {
			t.Errorf("DumpFileName(%q) = %q: unsafe", n, f)
		}
		if o, dup := seen[f]; dup {
			t.Errorf("%q and %q both give %q", o, n, f)
		}
		seen[f] = n
		back, err := UnescapeName(EscapeName(n))
		if err != nil || back != n {
			t.Errorf("UnescapeName(EscapeName(%q)) = %q, %v", n, back, err)
		}
		p := DumpFileName(n, 2)
		if _, dup := seen[p]; dup {
			t.Errorf("part file %q collides", p)
		}
		seen[p] = n
	}
	if got := DumpFileName("app", 0); got != "app.dump.zst.age" {
		t.Errorf("got %q", got)
	}
	if got := DumpFileName("app", 2); got != "app.part2.dump.zst.age" {
		t.Errorf("got %q", got)
	}
}

func sampleManifest() *Manifest {
	return &Manifest{
		Format: Format, Name: "s1",
		Started:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Finished: time.Date(2026, 1, 2, 3, 5, 5, 0, time.UTC),
		Server:   Server{Version: "15.4", VersionNum: 150004, Target: "h:5432/app"},
		PgDump:   Tool{Path: "/x/pg_dump", Version: "15.18"}, Compression: "zstd", Encryption: "age",
		Recipients: []string{"age1xyz"}, Jobs: 2,
		Globals: &File{Name: GlobalsName, CipherBytes: 3, SHA256: "aa"},
		Databases: []Database{{Name: "app", Files: []File{{Name: "app.dump.zst.age", PlainBytes: 1, CompressedBytes: 2, CipherBytes: 4, SHA256: "bb"}},
			TOCEntries: 3, Tables: []Table{{Schema: "public", Name: "t", Rows: 5, Estimate: -1}}, Blobs: 1}},
	}
}

// mutate calls f with each settable leaf field of v in turn.
func mutate(v reflect.Value, f func()) {
	switch v.Kind() {
	case reflect.Ptr:
		if !v.IsNil() {
			mutate(v.Elem(), f)
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			old := v.Interface().(time.Time)
			v.Set(reflect.ValueOf(old.Add(time.Second)))
			f()
			v.Set(reflect.ValueOf(old))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).Name != "MAC" {
				mutate(v.Field(i), f)
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			mutate(v.Index(i), f)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			old := v.MapIndex(k)
			v.SetMapIndex(k, reflect.ValueOf(old.String()+"x"))
			f()
			v.SetMapIndex(k, old)
		}
	case reflect.String:
		old := v.String()
		v.SetString(old + "x")
		f()
		v.SetString(old)
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 1)
		f()
		v.SetInt(v.Int() - 1)
	case reflect.Float64:
		v.SetFloat(v.Float() + 1)
		f()
		v.SetFloat(v.Float() - 1)
	case reflect.Bool:
		v.SetBool(!v.Bool())
		f()
		v.SetBool(!v.Bool())
	}
}

func TestMACTamper(t *testing.T) {
	key := [32]byte{1, 2, 3}
	m := sampleManifest()
	if err := m.VerifyMAC(key); err == nil {
		t.Fatal("unsigned manifest verified")
	}
	m.Sign(key)
	if err := m.VerifyMAC(key); err != nil {
		t.Fatal(err)
	}
	if err := m.VerifyMAC([32]byte{9}); err == nil {
		t.Error("wrong key verified")
	}
	n := 0
	mutate(reflect.ValueOf(m), func() {
		n++
		if m.VerifyMAC(key) == nil {
			t.Errorf("change %d not detected: %+v", n, m)
		}
	})
	if n < 20 || m.VerifyMAC(key) != nil {
		t.Fatalf("only %d mutations, or restore failed", n)
	}
	// Local-zone times MAC like their UTC form (the record is written in UTC).
	m2 := sampleManifest()
	m2.Started = m2.Started.In(time.FixedZone("x", 3600))
	m2.Sign(key)
	m3 := sampleManifest()
	m3.MAC = m2.MAC
	if err := m3.VerifyMAC(key); err != nil {
		t.Error(err)
	}

	v := &Verification{Format: Format, Verified: time.Now(), OK: true, Problems: []string{"p"}, Files: map[string]string{"a": "b"},
		RestoreTest: &RestoreTest{ServerVersion: "15", PgRestore: Tool{Path: "p", Version: "v"}, Seconds: 1, Tables: 2, Mismatches: []string{"m"}}}
	v.Sign(key)
	if err := v.VerifyMAC(key); err != nil {
		t.Fatal(err)
	}
	n = 0
	mutate(reflect.ValueOf(v), func() {
		n++
		if v.VerifyMAC(key) == nil {
			t.Errorf("verification change %d not detected", n)
		}
	})
	v.MAC = ""
	if v.VerifyMAC(key) == nil {
		t.Error("missing MAC accepted")
	}
}

func TestReadWrite(t *testing.T) {
	dir := t.TempDir()
	m := sampleManifest()
	m.Sign([32]byte{})
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, ManifestName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	got, err := ReadManifest(dir)
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, got, m)
	}
	if v, err := ReadVerification(dir); v != nil || err != nil {
		t.Fatalf("missing verification: %v %v", v, err)
	}
	good, _ := os.ReadFile(filepath.Join(dir, ManifestName))
	bad := map[string]string{
		"unknown field": strings.Replace(string(good), `"name"`, `"nam":1,"name"`, 1),
		"format":        strings.Replace(string(good), Format, "other/1", 1),
		"trailing":      string(good) + "{}",
		"not json":      "hello",
		"empty":         "",
	}
	for what, body := range bad {
		os.WriteFile(filepath.Join(dir, ManifestName), []byte(body), 0o600)
		_, err := ReadManifest(dir)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, ManifestName)) {
			t.Errorf("%s: error %v does not name the file", what, err)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temp files left: %v", ents)
	}
}

func FuzzReadManifest(f *testing.F) {
	b, _ := json.Marshal(sampleManifest())
	f.Add(b)
	f.Add([]byte(`{"format":"pgaegis-backup/1"}`))
	f.Add([]byte(`{"databases":[{"files":null}]}x`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeManifest("f.json", data)
		if err != nil {
			if !strings.Contains(err.Error(), "f.json") {
				t.Fatalf("error without path: %v", err)
			}
			return
		}
		if m.Format != Format {
			t.Fatal("wrong format accepted")
		}
		m.AllFiles()
		Set{Dir: t.TempDir(), Manifest: m}.Verified()
		DecodeVerification("v.json", data)
	})
}

// makeSet writes a set with one database file on disk; verified adds a
// matching verification.
func makeSet(t *testing.T, root, name string, started time.Time, verified bool) {
	dir := filepath.Join(root, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	body := []byte("cipher-" + name)
	sum := sha256.Sum256(body)
	fname := DumpFileName("app", 0)
	os.WriteFile(filepath.Join(dir, fname), body, 0o600)
	m := &Manifest{Format: Format, Name: name, Started: started, Finished: started.Add(time.Minute),
		Databases: []Database{{Name: "app", Files: []File{{Name: fname, CipherBytes: int64(len(body)), SHA256: hex.EncodeToString(sum[:])}}}}}
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	if verified {
		v := &Verification{Format: Format, Verified: started.Add(time.Hour), OK: true, Manifest: m.Digest(), Files: map[string]string{fname: hex.EncodeToString(sum[:])}}
		if err := WriteVerification(dir, v); err != nil {
			t.Fatal(err)
		}
	}
}

func TestListAndVerified(t *testing.T) {
	root := t.TempDir()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	makeSet(t, root, "a", t0, true)
	makeSet(t, root, "b", t0.Add(time.Hour), false)
	makeSet(t, root, "c", t0.Add(2*time.Hour), true)
	makeSet(t, root, "resized", t0.Add(3*time.Hour), true)
	os.WriteFile(filepath.Join(root, "resized", DumpFileName("app", 0)), []byte("x"), 0o600)
	makeSet(t, root, "missing", t0.Add(4*time.Hour), true)
	os.Remove(filepath.Join(root, "missing", DumpFileName("app", 0)))
	makeSet(t, root, "early", t0.Add(5*time.Hour), true)
	// verification before the manifest finished: not verified
	v, _ := ReadVerification(filepath.Join(root, "early"))
	v.Verified = t0
	WriteVerification(filepath.Join(root, "early"), v)
	makeSet(t, root, "badsum", t0.Add(6*time.Hour), true)
	v, _ = ReadVerification(filepath.Join(root, "badsum"))
	for k := range v.Files {
		v.Files[k] = "00"
	}
	WriteVerification(filepath.Join(root, "badsum"), v)
	os.Mkdir(filepath.Join(root, "zz-nomanifest"), 0o700)
	os.WriteFile(filepath.Join(root, "zz-nomanifest", "x.age"), nil, 0o600)
	os.Mkdir(filepath.Join(root, "empty"), 0o700)
	os.Mkdir(filepath.Join(root, ".hidden"), 0o700)
	os.WriteFile(filepath.Join(root, ".hidden", ManifestName), nil, 0o600)
	os.Symlink(filepath.Join(root, "a"), filepath.Join(root, "link"))
	os.WriteFile(filepath.Join(root, "file"), nil, 0o600)

	sets, err := List(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range sets {
		got = append(got, fmt.Sprintf("%s:%v:%v", filepath.Base(s.Dir), s.Verified(), s.Problem != ""))
	}
	want := []string{"badsum:false:false", "early:false:false", "missing:false:true", "resized:false:true",
		"c:true:false", "b:false:false", "a:true:false", "zz-nomanifest:false:true"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List:\n got %v\nwant %v", got, want)
	}
	if !strings.HasPrefix(sets[len(sets)-1].Problem, "no manifest: an unfinished backup") {
		t.Errorf("problem %q", sets[len(sets)-1].Problem)
	}
}

// refSelect is an independent, plain restatement of the retention rules.
func refSelect(sets []Set, k Keep, now time.Time) []bool {
	keep := make([]bool, len(sets))
	if k.Days == 0 && k.Last == 0 {
		for i := range keep {
			keep[i] = true
		}
		return keep
	}
	var newestVer time.Time
	have := false
	count := 0
	for i, s := range sets { // sets are newest first
		if s.Manifest == nil {
			continue
		}
		age := now.Sub(s.Manifest.Started)
		if k.Days > 0 && age <= time.Duration(k.Days)*24*time.Hour {
			keep[i] = true
		}
		if s.Verified() {
			if !have {
				have, newestVer = true, s.Manifest.Started
				keep[i] = true
			}
			count++
			if count <= k.Last {
				keep[i] = true
			}
		} else if k.Days == 0 && (!have || s.Manifest.Started.After(newestVer)) {
			keep[i] = true
		}
	}
	return keep
}

func TestSelectHistory(t *testing.T) {
	root := t.TempDir()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewSource(1))
	for d := 0; d < 60; d++ {
		// one set a day, older ones mostly verified, the newest two not
		makeSet(t, root, fmt.Sprintf("s%02d", d), now.Add(-time.Duration(d)*24*time.Hour-time.Hour), d > 1 && rng.Intn(4) != 0)
	}
	// a broken one
	os.Remove(filepath.Join(root, "s10", DumpFileName("app", 0)))
	sets, err := List(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) != 60 {
		t.Fatalf("%d sets", len(sets))
	}
	for _, k := range []Keep{{}, {Days: 7}, {Last: 3}, {Days: 7, Last: 3}, {Days: 1}, {Last: 1}, {Days: 30, Last: 40}, {Days: 100}, {Last: 100}} {
		t.Run(fmt.Sprintf("days%d_last%d", k.Days, k.Last), func(t *testing.T) {
			ds := Select(sets, k, now)
			want := refSelect(sets, k, now)
			newest := true
			kept := 0
			for i, d := range ds {
				if d.Set.Dir != sets[i].Dir {
					t.Fatal("order changed")
				}
				if d.Keep != want[i] {
					t.Errorf("%s: keep=%v (%s), want %v", filepath.Base(d.Set.Dir), d.Keep, d.Reason, want[i])
				}
				if d.Reason == "" {
					t.Errorf("%s: no reason", d.Set.Dir)
				}
				if d.Set.Verified() && newest {
					newest = false
					if !d.Keep {
						t.Error("newest verified set dropped")
					}
				}
				if d.Keep && d.Set.Verified() {
					kept++
				}
			}
			if k.Last > 0 && kept < k.Last && kept < countVerified(sets) {
				t.Errorf("kept %d verified, want at least %d", kept, k.Last)
			}
		})
	}
}

func countVerified(sets []Set) int {
	n := 0
	for _, s := range sets {
		if s.Verified() {
			n++
		}
	}
	return n
}

// An edit to manifest.json after verification (a row count, a database
// dropped from the list) un-verifies the set without any key: the
// verification names the digest of the manifest it checked.
func TestEditedManifestIsNotVerified(t *testing.T) {
	root := t.TempDir()
	makeSet(t, root, "a", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), true)
	sets, err := List(root)
	if err != nil || len(sets) != 1 || !sets[0].Verified() {
		t.Fatalf("the fresh set is not verified: %v %+v", err, sets)
	}
	m := sets[0].Manifest
	m.Databases[0].Tables = append(m.Databases[0].Tables, Table{Schema: "public", Name: "t", Rows: 1})
	if err := WriteManifest(sets[0].Dir, m); err != nil {
		t.Fatal(err)
	}
	sets, err = List(root)
	if err != nil || len(sets) != 1 {
		t.Fatal(err)
	}
	if sets[0].Verified() {
		t.Fatal("a manifest edited after verification still counts as verified")
	}
}
