// Package sealedfile writes and reads the files a backup consists of:
// a plaintext stream compressed with zstd and encrypted with age, written
// so that no plaintext byte ever reaches the disk and a partial file never
// carries the final name.
//
// Layout of the decrypted payload: a zstd skippable frame (magic
// 0x184D2A50) holding "pgaegis-backup/1\n" and the backup set's 32-byte
// MAC key, then ordinary zstd frames. So `age -d -i KEY F | zstd -d`
// gives the plain dump with standard tools, and only a holder of an
// identity learns the key that authenticates the manifest.
package sealedfile

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// KeySize is the length of the MAC key carried in every file of a set.
const KeySize = 32

// Magic starts the skippable frame's content.
const Magic = "pgaegis-backup/1\n"

// AgeHeader is how every age file (binary format) starts; an audit uses it
// to tell an encrypted backup from a plaintext one.
const AgeHeader = "age-encryption.org/v1\n"

// skippableMagic is the first of zstd's 16 skippable frame magics
// (0x184D2A50..0x184D2A5F, RFC 8878 3.1.2); decoders skip such frames.
const skippableMagic = 0x184D2A50

// frameLen is the whole skippable frame: magic, length, content.
const frameLen = 8 + len(Magic) + KeySize

// Stats are the byte counts and digest of one written or read file.
type Stats struct {
	PlainBytes      int64  // bytes of the plaintext stream
	CompressedBytes int64  // bytes of zstd output (the payload age encrypted)
	CipherBytes     int64  // bytes of the file
	SHA256          string // hex sha256 of the file (the ciphertext)
}

// Options for Create.
type Options struct {
	Recipients  []age.Recipient
	Key         [KeySize]byte // the set's MAC key
	Level       int           // zstd level: 0 default (klauspost SpeedDefault); 1 fastest .. 4 best
	Concurrency int           // zstd encoder goroutines; 0 = GOMAXPROCS
}

func encoderLevel(l int) (zstd.EncoderLevel, error) {
	switch l {
	case 0, 2:
		return zstd.SpeedDefault, nil
	case 1:
		return zstd.SpeedFastest, nil
	case 3:
		return zstd.SpeedBetterCompression, nil
	case 4:
		return zstd.SpeedBestCompression, nil
	}
	return 0, fmt.Errorf("sealedfile: compression level %d out of range 0..4", l)
}

// frame is the skippable frame carrying key.
func frame(key [KeySize]byte) []byte {
	b := make([]byte, 0, frameLen)
	b = binary.LittleEndian.AppendUint32(b, skippableMagic)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(Magic)+KeySize))
	b = append(b, Magic...)
	return append(b, key[:]...)
}

// parseFrame checks the first frameLen bytes of a payload.
func parseFrame(b []byte) ([KeySize]byte, error) {
	var key [KeySize]byte
	if len(b) < 8 || binary.LittleEndian.Uint32(b) != skippableMagic {
		return key, errors.New("the decrypted payload does not start with pgaegis's key frame: not a pgaegis backup file (a plain age+zstd file?)")
	}
	if n := binary.LittleEndian.Uint32(b[4:]); n != uint32(len(Magic)+KeySize) || len(b) < frameLen || string(b[8:8+len(Magic)]) != Magic {
		return key, errors.New("the decrypted payload starts with a zstd skippable frame that is not pgaegis's key frame (another format or version)")
	}
	copy(key[:], b[8+len(Magic):frameLen])
	return key, nil
}

// countHash counts and hashes what passes through it to w.
type countHash struct {
	w io.Writer
	n int64
	h hash.Hash
}

func (c *countHash) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if c.h != nil {
		c.h.Write(p[:n])
	}
	return n, err
}

// sink is the ciphertext half every sealed file is written through: a
// temporary file next to the final one, age over it, and the commit that
// gives the file its name.
type sink struct {
	path, tmp string
	f         *os.File
	buf       *bufio.Writer
	cipher    *countHash     // file bytes, hashed
	enc       io.WriteCloser // age
	payload   *countHash     // bytes given to age
	done      bool
}

func newSink(path string, recipients []age.Recipient) (*sink, error) {
	if len(recipients) == 0 {
		return nil, fmt.Errorf("sealedfile: %s: no recipients", path)
	}
	dir, base := filepath.Split(path)
	if base == "" {
		return nil, fmt.Errorf("sealedfile: %q: no file name", path)
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(dir, "."+base+".partial-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sealedfile: %w", err)
	}
	s := &sink{path: path, tmp: tmp, f: f, buf: bufio.NewWriterSize(f, 1<<20)}
	s.cipher = &countHash{w: s.buf, h: sha256.New()}
	s.enc, err = age.Encrypt(s.cipher, recipients...)
	if err != nil {
		s.abort()
		return nil, fmt.Errorf("sealedfile: %s: %w", path, err)
	}
	s.payload = &countHash{w: s.enc}
	return s, nil
}

// commit closes age, makes the bytes durable and links them under the
// final name, which must not exist yet.
func (s *sink) commit() (Stats, error) {
	if s.done {
		return Stats{}, errors.New("sealedfile: already committed or aborted")
	}
	fail := func(err error) (Stats, error) {
		s.abort()
		return Stats{}, fmt.Errorf("sealedfile: %s: %w", s.path, err)
	}
	if err := s.enc.Close(); err != nil {
		return fail(err)
	}
	if err := s.buf.Flush(); err != nil {
		return fail(err)
	}
	if err := s.f.Sync(); err != nil {
		return fail(err)
	}
	if err := s.f.Close(); err != nil {
		s.f = nil
		return fail(err)
	}
	s.f = nil
	if err := linkNoReplace(s.tmp, s.path); err != nil {
		return fail(err)
	}
	s.done = true
	os.Remove(s.tmp) // the final name holds the inode now; a failure leaves only a hidden duplicate
	syncDir(filepath.Dir(s.path))
	return Stats{
		CompressedBytes: s.payload.n,
		CipherBytes:     s.cipher.n,
		SHA256:          hex.EncodeToString(s.cipher.h.Sum(nil)),
	}, nil
}

func (s *sink) abort() {
	if s.done {
		return
	}
	s.done = true
	if s.f != nil {
		s.f.Close()
	}
	os.Remove(s.tmp)
}

// linkNoReplace gives tmp the name path unless path exists: renameat2
// with RENAME_NOREPLACE in one step, or a hard link where the file system
// lacks it (the caller removes tmp afterwards either way).
func linkNoReplace(tmp, path string) error {
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, path, unix.RENAME_NOREPLACE)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("%s exists already; it is not replaced", path)
	}
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.ENOTSUP) {
		return &os.LinkError{Op: "rename", Old: tmp, New: path, Err: err}
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s exists already; it is not replaced", path)
		}
		return err
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Writer is an open sealed file. Write plaintext to it; Commit makes it
// durable under its final name; Abort (or a failed Commit) removes every
// trace.
type Writer struct {
	s     *sink
	z     *zstd.Encoder
	plain int64
	err   error
}

// Create starts path: a temporary file in the same directory (0600,
// O_EXCL, name ".NAME.partial-RANDOM"), holding only ciphertext.
func Create(path string, o Options) (*Writer, error) {
	lvl, err := encoderLevel(o.Level)
	if err != nil {
		return nil, err
	}
	if o.Concurrency < 0 {
		return nil, fmt.Errorf("sealedfile: concurrency %d < 0", o.Concurrency)
	}
	s, err := newSink(path, o.Recipients)
	if err != nil {
		return nil, err
	}
	// The key frame goes ahead of zstd's first frame; the encoder writes
	// nothing before the first Write or Close.
	if _, err := s.payload.Write(frame(o.Key)); err != nil {
		s.abort()
		return nil, fmt.Errorf("sealedfile: %s: %w", path, err)
	}
	z, err := zstd.NewWriter(s.payload, zstd.WithEncoderLevel(lvl), zstd.WithEncoderConcurrency(o.Concurrency))
	if err != nil {
		s.abort()
		return nil, fmt.Errorf("sealedfile: %w", err)
	}
	return &Writer{s: s, z: z}, nil
}

func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.s.done {
		return 0, errors.New("sealedfile: write after Commit or Abort")
	}
	n, err := w.z.Write(p)
	w.plain += int64(n)
	if err != nil {
		w.err = fmt.Errorf("sealedfile: %s: %w", w.s.path, err)
		return n, w.err
	}
	return n, nil
}

// Commit flushes zstd and age, fsyncs the file, renames it to its final
// name (refusing to replace an existing file) and fsyncs the directory.
func (w *Writer) Commit() (Stats, error) {
	if w.err != nil {
		w.Abort()
		return Stats{}, w.err
	}
	if w.s.done {
		return Stats{}, errors.New("sealedfile: already committed or aborted")
	}
	if err := w.z.Close(); err != nil {
		w.Abort()
		return Stats{}, fmt.Errorf("sealedfile: %s: %w", w.s.path, err)
	}
	st, err := w.s.commit()
	st.PlainBytes = w.plain
	return st, err
}

// Abort removes the temporary file. Safe after Commit (does nothing).
func (w *Writer) Abort() {
	if w.s.done {
		return
	}
	w.z.Close() // stops the encoder's goroutines; its output goes to a file about to go
	w.s.abort()
}

// Reader opens a sealed file for reading plaintext.
type Reader struct {
	path   string
	f      *os.File
	cipher *countRead
	z      *zstd.Decoder
	key    [KeySize]byte
	comp   *countRead
	plain  int64
	eof    bool
}

// countRead counts (and optionally hashes) what is read through it.
type countRead struct {
	r io.Reader
	n int64
	h hash.Hash
}

func (c *countRead) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.h != nil {
		c.h.Write(p[:n])
	}
	return n, err
}

// openPayload opens path, decrypts it and reads the key frame; the
// returned reader gives the zstd frames that follow.
func openPayload(path string, identities []age.Identity) (f *os.File, cipher *countRead, payload *countRead, rest io.Reader, key [KeySize]byte, err error) {
	if len(identities) == 0 {
		return nil, nil, nil, nil, key, fmt.Errorf("sealedfile: %s: no identities to open it with", path)
	}
	f, err = os.Open(path)
	if err != nil {
		return nil, nil, nil, nil, key, fmt.Errorf("sealedfile: %w", err)
	}
	fail := func(e error) (*os.File, *countRead, *countRead, io.Reader, [KeySize]byte, error) {
		f.Close()
		return nil, nil, nil, nil, key, fmt.Errorf("sealedfile: %s: %w", path, e)
	}
	head := make([]byte, 1024)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if !IsAge(head) {
		return fail(errors.New("not an age-encrypted file (no age header): a plaintext or foreign file"))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	cipher = &countRead{r: f, h: sha256.New()}
	var src io.Reader = cipher
	if bytes.HasPrefix(head, []byte(armor.Header)) {
		src = armor.NewReader(bufio.NewReader(cipher))
	}
	dec, err := age.Decrypt(src, identities...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return fail(fmt.Errorf("no identity matched: none of the %d identities given can open this file (it is encrypted to recipients of type %s)", len(identities), strings.Join(nm.StanzaTypes, ", ")))
		}
		return fail(err)
	}
	payload = &countRead{r: dec}
	br := bufio.NewReaderSize(payload, 256<<10)
	hdr := make([]byte, frameLen)
	if n, err := io.ReadFull(br, hdr); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			if _, ferr := parseFrame(hdr[:n]); ferr != nil {
				return fail(ferr)
			}
			return fail(errors.New("the payload ends inside pgaegis's key frame"))
		}
		return fail(err)
	}
	key, err = parseFrame(hdr)
	if err != nil {
		return fail(err)
	}
	return f, cipher, payload, br, key, nil
}

// Open decrypts path with identities and reads the skippable frame; a
// file that is not age, a wrong identity, or a payload without the frame
// are errors saying which.
func Open(path string, identities []age.Identity) (*Reader, error) {
	f, cipher, payload, rest, key, err := openPayload(path, identities)
	if err != nil {
		return nil, err
	}
	// One decoding goroutine: the reader's consumer (pg_restore, a hash)
	// is the bottleneck, and a lone decoder keeps error order simple.
	// The window cap bounds the memory a crafted file (anyone holding a
	// recipient's public key can make one) makes us allocate; our encoder
	// uses 8 MiB, zstd --long 128 MiB.
	z, err := zstd.NewReader(rest, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(128<<20))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("sealedfile: %s: %w", path, err)
	}
	return &Reader{path: path, f: f, cipher: cipher, z: z, key: key, comp: payload}, nil
}

// Key is the MAC key the file carries.
func (r *Reader) Key() [KeySize]byte { return r.key }

// Read returns plaintext. A truncated or corrupted file is an error here
// (age authenticates every 64 KiB chunk and the final one), never a short
// clean EOF.
func (r *Reader) Read(p []byte) (int, error) {
	if r.z == nil {
		return 0, errors.New("sealedfile: read after Close")
	}
	n, err := r.z.Read(p)
	r.plain += int64(n)
	if err == io.EOF {
		r.eof = true
		return n, io.EOF
	}
	if err != nil {
		return n, fmt.Errorf("sealedfile: %s: %w", r.path, err)
	}
	return n, nil
}

// Close ends the read; after a full read to EOF, Stats has the file's
// byte counts and sha256 (computed over the ciphertext as it was read).
func (r *Reader) Close() (Stats, error) {
	if r.z == nil {
		return Stats{}, errors.New("sealedfile: already closed")
	}
	r.z.Close()
	r.z = nil
	st := Stats{
		PlainBytes:      r.plain,
		CompressedBytes: r.comp.n,
		CipherBytes:     r.cipher.n,
		SHA256:          hex.EncodeToString(r.cipher.h.Sum(nil)),
	}
	return st, r.f.Close()
}

// ReadKey decrypts only as much of path as it takes to read the key
// frame: it proves an identity opens the file and gives the set's key
// without decompressing anything.
func ReadKey(path string, identities []age.Identity) ([KeySize]byte, error) {
	f, _, _, _, key, err := openPayload(path, identities)
	if err != nil {
		return key, err
	}
	f.Close()
	return key, nil
}

// Rekey re-encrypts src to the new recipients into dst (another sealed
// file path), streaming: decrypt, re-encrypt, never decompressing; the
// payload and its key stay as they were. Stats.PlainBytes is 0 (the
// plaintext is never looked at); the rest describe dst.
func Rekey(src, dst string, identities []age.Identity, recipients []age.Recipient) (Stats, error) {
	f, _, _, rest, key, err := openPayload(src, identities)
	if err != nil {
		return Stats{}, err
	}
	defer f.Close()
	s, err := newSink(dst, recipients)
	if err != nil {
		return Stats{}, err
	}
	if _, err := s.payload.Write(frame(key)); err != nil {
		s.abort()
		return Stats{}, fmt.Errorf("sealedfile: %s: %w", dst, err)
	}
	// An age error (truncated or altered src) ends the copy before commit,
	// so a damaged source never yields a good-looking destination.
	if _, err := io.Copy(s.payload, rest); err != nil {
		s.abort()
		return Stats{}, fmt.Errorf("sealedfile: rekey %s: %w", src, err)
	}
	return s.commit()
}

// IsAge reports whether the first bytes of a file are age's header
// (binary or armored).
func IsAge(head []byte) bool {
	if bytes.HasPrefix(head, []byte(AgeHeader)) {
		return true
	}
	// age accepts armor after leading whitespace.
	return bytes.HasPrefix(bytes.TrimLeft(head, " \t\r\n"), []byte(armor.Header))
}
