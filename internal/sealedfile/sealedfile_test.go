package sealedfile

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"filippo.io/age"
	"filippo.io/age/agessh"
)

const (
	ageBin     = "/usr/bin/age"
	keygenBin  = "/usr/bin/age-keygen"
	zstdBin    = "/usr/bin/zstd"
	sshKeygen  = "/usr/bin/ssh-keygen"
	testMarker = "PLAINTEXT-MARKER-7f3a"
)

func need(t testing.TB, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := os.Stat(b); err != nil {
			t.Skipf("%s not installed: the oracle test needs it", b)
		}
	}
}

// key is an age identity made by the real age-keygen, kept in a 0600 file.
type key struct {
	file string
	id   age.Identity
	rcp  age.Recipient
	pub  string
}

func newKey(t testing.TB) key {
	t.Helper()
	need(t, keygenBin)
	file := filepath.Join(t.TempDir(), "key.txt")
	if out, err := exec.Command(keygenBin, "-o", file).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen: %v: %s", err, out)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		t.Fatal(err)
	}
	x := ids[0].(*age.X25519Identity)
	return key{file: file, id: x, rcp: x.Recipient(), pub: x.Recipient().String()}
}

// sample is a mix a dump looks like: compressible rows and random bytes
// (bytea, already compressed TOAST) that zstd cannot shrink.
func sample(t testing.TB, rows, random int) []byte {
	t.Helper()
	var b bytes.Buffer
	for i := 0; i < rows; i++ {
		fmt.Fprintf(&b, "%d\tcustomer-%d\t%s\t2026-12-%02d 10:%02d:00+00\n", i, i%977, testMarker, i%28+1, i%60)
	}
	r := make([]byte, random)
	rand.Read(r)
	b.Write(r)
	return b.Bytes()
}

func testKey() (k [KeySize]byte) {
	rand.Read(k[:])
	return k
}

func write(t testing.TB, path string, data []byte, o Options) Stats {
	t.Helper()
	w, err := Create(path, o)
	if err != nil {
		t.Fatal(err)
	}
	// Uneven writes, as a pipe from pg_dump delivers them.
	for off := 0; off < len(data); {
		n := min(len(data)-off, 1+off%70000)
		if _, err := w.Write(data[off : off+n]); err != nil {
			w.Abort()
			t.Fatal(err)
		}
		off += n
	}
	st, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func readAll(path string, ids ...age.Identity) ([]byte, [KeySize]byte, Stats, error) {
	r, err := Open(path, ids)
	if err != nil {
		return nil, [KeySize]byte{}, Stats{}, err
	}
	data, err := io.ReadAll(r)
	st, cerr := r.Close()
	if err == nil {
		err = cerr
	}
	return data, r.Key(), st, err
}

func fileSHA(t testing.TB, path string) (string, int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), int64(len(b))
}

// ORACLE: the real age and zstd CLIs decrypt and decompress our file to
// the exact plaintext, skipping the key frame as any zstd decoder must.
func TestOracleAgeZstdCLI(t *testing.T) {
	need(t, ageBin, zstdBin)
	k := newKey(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		data  []byte
		level int
	}{
		{"mixed", sample(t, 60000, 300000), 0},
		{"large", sample(t, 150000, 3<<20), 0}, // 12 MB, several zstd blocks and age chunks
		{"fastest", sample(t, 20000, 1000), 1},
		{"best", sample(t, 20000, 1000), 4},
		{"empty", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".zst.age")
			mk := testKey()
			st := write(t, path, tc.data, Options{Recipients: []age.Recipient{k.rcp}, Key: mk, Level: tc.level})
			sum, size := fileSHA(t, path)
			if st.SHA256 != sum || st.CipherBytes != size || st.PlainBytes != int64(len(tc.data)) {
				t.Fatalf("stats %+v, file sha256 %s size %d, plain %d", st, sum, size, len(tc.data))
			}
			fi, _ := os.Stat(path)
			if fi.Mode().Perm() != 0o600 {
				t.Fatalf("mode %v, want 0600", fi.Mode())
			}

			payload, err := exec.Command(ageBin, "-d", "-i", k.file, path).Output()
			if err != nil {
				t.Fatalf("age -d: %v", err)
			}
			if int64(len(payload)) != st.CompressedBytes {
				t.Fatalf("age -d gave %d bytes, Stats.CompressedBytes %d", len(payload), st.CompressedBytes)
			}
			if got, err := parseFrame(payload); err != nil || got != mk {
				t.Fatalf("payload frame: %v (key equal %v)", err, got == mk)
			}
			zc := exec.Command(zstdBin, "-d", "-c", "-q")
			zc.Stdin = bytes.NewReader(payload)
			plain, err := zc.Output()
			if err != nil {
				t.Fatalf("zstd -d: %v", err)
			}
			if !bytes.Equal(plain, tc.data) {
				t.Fatalf("zstd -d gave %d bytes, wrote %d (or different bytes)", len(plain), len(tc.data))
			}

			got, gotKey, rst, err := readAll(path, k.id)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.data) || gotKey != mk {
				t.Fatalf("Reader: %d bytes, key equal %v", len(got), gotKey == mk)
			}
			if rst != st {
				t.Fatalf("reader stats %+v != writer stats %+v", rst, st)
			}
		})
	}
}

// ORACLE: a file the age and zstd CLIs make (no key frame) is refused
// with a reason, and so is a file that is not age at all.
func TestForeignFiles(t *testing.T) {
	need(t, ageBin, zstdBin)
	k := newKey(t)
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, sample(t, 1000, 10), 0o600)
	zst := filepath.Join(dir, "plain.zst")
	if out, err := exec.Command(zstdBin, "-q", "-o", zst, plain).CombinedOutput(); err != nil {
		t.Fatalf("zstd: %v %s", err, out)
	}
	foreign := filepath.Join(dir, "foreign.zst.age")
	if out, err := exec.Command(ageBin, "-r", k.pub, "-o", foreign, zst).CombinedOutput(); err != nil {
		t.Fatalf("age -r: %v %s", err, out)
	}
	for _, tc := range []struct{ path, want string }{
		{foreign, "not a pgaegis backup"},
		{zst, "not an age-encrypted file"},
		{plain, "not an age-encrypted file"},
	} {
		_, err := Open(tc.path, []age.Identity{k.id})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("Open(%s) = %v, want an error naming it with %q", filepath.Base(tc.path), err, tc.want)
		}
		if _, err := Rekey(tc.path, tc.path+".rekeyed", []age.Identity{k.id}, []age.Recipient{k.rcp}); err == nil {
			t.Errorf("Rekey(%s) succeeded", filepath.Base(tc.path))
		}
	}
}

// ORACLE: age's armored form (age -a, from the CLI) of our payload opens too.
func TestArmored(t *testing.T) {
	need(t, ageBin)
	k := newKey(t)
	dir := t.TempDir()
	data := sample(t, 3000, 1000)
	path := filepath.Join(dir, "f.age")
	mk := testKey()
	write(t, path, data, Options{Recipients: []age.Recipient{k.rcp}, Key: mk})
	payload, err := exec.Command(ageBin, "-d", "-i", k.file, path).Output()
	if err != nil {
		t.Fatal(err)
	}
	c := exec.Command(ageBin, "-a", "-r", k.pub)
	c.Stdin = bytes.NewReader(payload)
	armored, err := c.Output()
	if err != nil {
		t.Fatal(err)
	}
	ap := filepath.Join(dir, "f.asc")
	os.WriteFile(ap, armored, 0o600)
	if !IsAge(armored) {
		t.Fatal("IsAge false on armored age")
	}
	got, gotKey, _, err := readAll(ap, k.id)
	if err != nil || !bytes.Equal(got, data) || gotKey != mk {
		t.Fatalf("armored: %v, equal %v", err, bytes.Equal(got, data))
	}
}

// A file cut anywhere, or with any byte altered, must fail in Open or in
// Read: never give a clean, short plaintext.
func TestTruncatedAndCorrupted(t *testing.T) {
	k := newKey(t)
	dir := t.TempDir()
	data := sample(t, 40000, 200000)
	path := filepath.Join(dir, "f.age")
	write(t, path, data, Options{Recipients: []age.Recipient{k.rcp}, Key: testKey()})
	orig, _ := os.ReadFile(path)
	n := len(orig)
	hdrEnd := bytes.Index(orig, []byte("\n---")) + 48 // past the header MAC line
	check := func(name string, b []byte) {
		t.Helper()
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		got, _, _, err := readAll(p, k.id)
		if err == nil {
			t.Errorf("%s: read %d of %d bytes without error", name, len(got), len(data))
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	for _, cut := range []int{0, 5, 21, 22, hdrEnd - 10, hdrEnd, hdrEnd + 16, hdrEnd + 100, 64 << 10, n / 2, n - 17, n - 16, n - 1} {
		if cut < 0 || cut >= n {
			continue
		}
		check(fmt.Sprintf("cut-%d", cut), orig[:cut])
	}
	for _, at := range []int{30, hdrEnd - 5, hdrEnd + 20, hdrEnd + 200, n / 3, n - 20, n - 1} {
		b := bytes.Clone(orig)
		b[at] ^= 0x01
		check(fmt.Sprintf("flip-%d", at), b)
	}
	// Appending garbage after the final chunk is caught too.
	check("appended", append(bytes.Clone(orig), 0))
}

func TestWrongIdentity(t *testing.T) {
	k, other := newKey(t), newKey(t)
	path := filepath.Join(t.TempDir(), "f.age")
	write(t, path, []byte("x"), Options{Recipients: []age.Recipient{k.rcp}, Key: testKey()})
	_, err := Open(path, []age.Identity{other.id})
	if err == nil || !strings.Contains(err.Error(), "no identity matched") {
		t.Fatalf("Open with the wrong identity: %v", err)
	}
	var nm *age.NoIdentityMatchError
	if errors.As(err, &nm) {
		t.Log("(the age error is not wrapped; only its message is kept)")
	}
	if _, err := ReadKey(path, []age.Identity{other.id}); err == nil {
		t.Fatal("ReadKey with the wrong identity succeeded")
	}
	if _, err := Rekey(path, path+".2", []age.Identity{other.id}, []age.Recipient{other.rcp}); err == nil {
		t.Fatal("Rekey with the wrong identity succeeded")
	}
	if _, err := os.Stat(path + ".2"); !os.IsNotExist(err) {
		t.Fatalf("failed rekey left %s: %v", path+".2", err)
	}
}

// While a large file is written, every file that ever shows in the
// directory is empty or starts with the age header, and none contains a
// plaintext marker that the (compressible) data repeats. The directory is
// checked after every Write (deterministic) and by a goroutine polling
// all along (catching what shows between writes, e.g. during Commit).
func TestNoPlaintextOnDisk(t *testing.T) {
	k := newKey(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "big.age")
	data := sample(t, 100000, 4<<20) // 10 MB: the rows compress, the random part makes the file grow in many flushes
	var seen atomic.Int64
	check := func() error {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil || len(b) == 0 {
				continue // renamed or removed meanwhile, or nothing flushed yet
			}
			seen.Add(1)
			head := b[:min(len(b), len(AgeHeader))]
			if !strings.HasPrefix(AgeHeader, string(head)) {
				return fmt.Errorf("%s (%d bytes) does not start with the age header", e.Name(), len(b))
			}
			if bytes.Contains(b, []byte(testMarker)) {
				return fmt.Errorf("%s (%d bytes) holds plaintext", e.Name(), len(b))
			}
		}
		return nil
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var bad atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if err := check(); err != nil {
				bad.Store(err)
			}
		}
	}()
	w, err := Create(path, Options{Recipients: []age.Recipient{k.rcp}, Key: testKey()})
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 1 << 16 {
		if _, err := w.Write(data[off:min(len(data), off+1<<16)]); err != nil {
			t.Fatal(err)
		}
		if err := check(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	stop.Store(true)
	wg.Wait()
	if err := check(); err != nil {
		t.Fatal(err)
	}
	if v := bad.Load(); v != nil {
		t.Fatal(v)
	}
	t.Logf("%d non-empty file reads checked", seen.Load())
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "big.age" {
		t.Fatalf("directory after commit: %v", ents)
	}
}

func TestAbort(t *testing.T) {
	k := newKey(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "f.age")
	w, err := Create(path, Options{Recipients: []age.Recipient{k.rcp}, Key: testKey()})
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), ".f.age.partial-") {
		t.Fatalf("while writing: %v", ents)
	}
	fi, _ := os.Stat(filepath.Join(dir, ents[0].Name()))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("temporary file mode %v", fi.Mode())
	}
	w.Write(sample(t, 1000, 1000))
	w.Abort()
	w.Abort()
	if _, err := w.Commit(); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("Abort left %v", ents)
	}

	// Abort after Commit keeps the file.
	write(t, path, []byte("kept"), Options{Recipients: []age.Recipient{k.rcp}, Key: testKey()})
	w2, _ := Create(path+"2", Options{Recipients: []age.Recipient{k.rcp}, Key: testKey()})
	w2.Commit()
	w2.Abort()
	if _, err := os.Stat(path + "2"); err != nil {
		t.Fatalf("Abort after Commit: %v", err)
	}
}

func TestCommitRefusesToReplace(t *testing.T) {
	k := newKey(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "f.age")
	os.WriteFile(path, []byte("keep me"), 0o600)
	w, err := Create(path, Options{Recipients: []age.Recipient{k.rcp}, Key: testKey()})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("new"))
	if _, err := w.Commit(); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("Commit over an existing file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Fatalf("existing file now %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("failed Commit left %v", ents)
	}
}

func TestBadOptions(t *testing.T) {
	k := newKey(t)
	dir := t.TempDir()
	for _, o := range []Options{
		{},
		{Recipients: []age.Recipient{k.rcp}, Level: 5},
		{Recipients: []age.Recipient{k.rcp}, Level: -1},
		{Recipients: []age.Recipient{k.rcp}, Concurrency: -1},
	} {
		if w, err := Create(filepath.Join(dir, "f"), o); err == nil {
			w.Abort()
			t.Errorf("Create(%+v) succeeded", o)
		}
	}
	if _, err := Create(filepath.Join(dir, "missing", "f"), Options{Recipients: []age.Recipient{k.rcp}}); err == nil {
		t.Error("Create in a missing directory succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left %v", ents)
	}
}

// ORACLE: an ed25519 key from the real ssh-keygen as recipient; both our
// Reader and age -d -i SSHKEY open the file.
func TestSSHRecipient(t *testing.T) {
	need(t, sshKeygen, ageBin, zstdBin)
	dir := t.TempDir()
	kf := filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command(sshKeygen, "-q", "-t", "ed25519", "-N", "", "-C", "backup@test", "-f", kf).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, _ := os.ReadFile(kf + ".pub")
	priv, _ := os.ReadFile(kf)
	rcp, err := agessh.ParseRecipient(strings.TrimSpace(string(pub)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := agessh.ParseIdentity(priv)
	if err != nil {
		t.Fatal(err)
	}
	data := sample(t, 5000, 5000)
	path := filepath.Join(dir, "f.age")
	mk := testKey()
	write(t, path, data, Options{Recipients: []age.Recipient{rcp}, Key: mk})
	got, gotKey, _, err := readAll(path, id)
	if err != nil || !bytes.Equal(got, data) || gotKey != mk {
		t.Fatalf("ssh round trip: %v", err)
	}
	out, err := exec.Command("sh", "-c", `"$1" -d -i "$2" "$3" | "$4" -d -c -q`, "sh", ageBin, kf, path, zstdBin).Output()
	if err != nil || !bytes.Equal(out, data) {
		t.Fatalf("age -d -i ssh key | zstd -d: %v, equal %v", err, bytes.Equal(out, data))
	}
}

func TestRekey(t *testing.T) {
	need(t, ageBin, zstdBin)
	oldK, newK := newKey(t), newKey(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.age")
	dst := filepath.Join(dir, "dst.age")
	data := sample(t, 30000, 100000)
	mk := testKey()
	wst := write(t, src, data, Options{Recipients: []age.Recipient{oldK.rcp}, Key: mk})

	st, err := Rekey(src, dst, []age.Identity{oldK.id}, []age.Recipient{newK.rcp})
	if err != nil {
		t.Fatal(err)
	}
	sum, size := fileSHA(t, dst)
	if st.SHA256 != sum || st.CipherBytes != size || st.CompressedBytes != wst.CompressedBytes || st.PlainBytes != 0 {
		t.Fatalf("rekey stats %+v; file %s %d; source %+v", st, sum, size, wst)
	}
	if _, err := Open(dst, []age.Identity{oldK.id}); err == nil || !strings.Contains(err.Error(), "no identity matched") {
		t.Fatalf("old identity on dst: %v", err)
	}
	got, gotKey, _, err := readAll(dst, newK.id)
	if err != nil || !bytes.Equal(got, data) || gotKey != mk {
		t.Fatalf("new identity on dst: %v, equal %v, key kept %v", err, bytes.Equal(got, data), gotKey == mk)
	}
	if k, err := ReadKey(dst, []age.Identity{newK.id}); err != nil || k != mk {
		t.Fatalf("ReadKey: %v", err)
	}
	// ORACLE: the compressed payload is byte for byte the source's.
	a, err1 := exec.Command(ageBin, "-d", "-i", oldK.file, src).Output()
	b, err2 := exec.Command(ageBin, "-d", "-i", newK.file, dst).Output()
	if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
		t.Fatalf("payloads differ: %v %v", err1, err2)
	}
	// The source is untouched and still opens with the old key.
	if got, _, _, err := readAll(src, oldK.id); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("source after rekey: %v", err)
	}
	// No replacing dst; a damaged source gives no destination.
	if _, err := Rekey(src, dst, []age.Identity{oldK.id}, []age.Recipient{newK.rcp}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("rekey onto an existing dst: %v", err)
	}
	orig, _ := os.ReadFile(src)
	cut := filepath.Join(dir, "cut.age")
	os.WriteFile(cut, orig[:len(orig)-100], 0o600)
	if _, err := Rekey(cut, filepath.Join(dir, "cut2.age"), []age.Identity{oldK.id}, []age.Recipient{newK.rcp}); err == nil {
		t.Fatal("rekey of a truncated source succeeded")
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "cut.age dst.age src.age" {
		t.Fatalf("directory: %v", names)
	}
}

func TestIsAge(t *testing.T) {
	for _, tc := range []struct {
		head string
		want bool
	}{
		{AgeHeader + "-> X25519 abc\n", true},
		{"-----BEGIN AGE ENCRYPTED FILE-----\nYWdl", true},
		{"\n  -----BEGIN AGE ENCRYPTED FILE-----\n", true},
		{"age-encryption.org/v2\n", false},
		{"age-encryption.org/v1", false},
		{"PGDMP\x01\x0e", false},
		{"\x28\xb5\x2f\xfd", false},
		{"", false},
	} {
		if got := IsAge([]byte(tc.head)); got != tc.want {
			t.Errorf("IsAge(%q) = %v", tc.head, got)
		}
	}
}

// BenchmarkWriter reports MB/s of plaintext into a sealed file at the
// default level, on however many cores GOMAXPROCS gives (run with -cpu 2).
func BenchmarkWriter(b *testing.B) {
	k := newKey(b)
	data := sample(b, 600000, 0) // compressible, about 36 MB
	dir := b.TempDir()
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		path := filepath.Join(dir, fmt.Sprintf("f%d.age", i))
		w, err := Create(path, Options{Recipients: []age.Recipient{k.rcp}, Key: testKey()})
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < len(data); off += 1 << 20 {
			w.Write(data[off:min(len(data), off+1<<20)])
		}
		st, err := w.Commit()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(st.PlainBytes)/float64(st.CompressedBytes), "ratio")
		os.Remove(path)
	}
}

// BenchmarkReader reports MB/s of plaintext read back and checked.
func BenchmarkReader(b *testing.B) {
	k := newKey(b)
	data := sample(b, 600000, 0)
	path := filepath.Join(b.TempDir(), "f.age")
	write(b, path, data, Options{Recipients: []age.Recipient{k.rcp}, Key: testKey()})
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r, err := Open(path, []age.Identity{k.id})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}

// A payload age authenticates but whose zstd part is cut or altered
// (written by a broken or hostile writer holding the public key) fails in
// Read with zstd's error: the decoder's errors reach the caller and a cut
// inside a frame is no clean EOF.
func TestDamagedZstdInsideValidAge(t *testing.T) {
	k := newKey(t)
	dir := t.TempDir()
	data := sample(t, 20000, 20000)
	src := filepath.Join(dir, "f.age")
	write(t, src, data, Options{Recipients: []age.Recipient{k.rcp}, Key: testKey()})
	f, _ := os.Open(src)
	dec, err := age.Decrypt(f, k.id)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := io.ReadAll(dec)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	seal := func(name string, p []byte) string {
		path := filepath.Join(dir, name)
		out, _ := os.Create(path)
		w, _ := age.Encrypt(out, k.rcp)
		w.Write(p)
		w.Close()
		out.Close()
		return path
	}
	n := len(payload)
	cases := map[string][]byte{
		"cut-frame-header": payload[:frameLen+3],
		"cut-mid":          payload[:frameLen+(n-frameLen)/2],
		"cut-checksum":     payload[:n-2],
		"garbage-after":    append(bytes.Clone(payload), 1, 2, 3, 4, 5, 6, 7, 8),
	}
	flipped := bytes.Clone(payload)
	flipped[frameLen+(n-frameLen)/2] ^= 0x40
	cases["flipped"] = flipped
	for name, p := range cases {
		got, _, _, err := readAll(seal(name, p), k.id)
		if err == nil {
			t.Errorf("%s: read %d of %d bytes without error", name, len(got), len(data))
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// And the frame alone (no zstd frame at all) is an empty plaintext, as
	// zstd -d says of it too.
	got, _, _, err := readAll(seal("frame-only", payload[:frameLen]), k.id)
	if err != nil || len(got) != 0 {
		t.Fatalf("frame only: %v, %d bytes", err, len(got))
	}
}
