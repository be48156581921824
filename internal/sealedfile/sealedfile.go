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
	"errors"

	"filippo.io/age"
)

// KeySize is the length of the MAC key carried in every file of a set.
const KeySize = 32

// Magic starts the skippable frame's content.
const Magic = "pgaegis-backup/1\n"

// AgeHeader is how every age file (binary format) starts; an audit uses it
// to tell an encrypted backup from a plaintext one.
const AgeHeader = "age-encryption.org/v1\n"

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

// Writer is an open sealed file. Write plaintext to it; Commit makes it
// durable under its final name; Abort (or a failed Commit) removes every
// trace.
type Writer struct{}

// Create starts path: a temporary file in the same directory (0600,
// O_EXCL, name ".NAME.partial-RANDOM"), holding only ciphertext.
func Create(path string, o Options) (*Writer, error) {
	return nil, errors.New("sealedfile: not implemented")
}

func (w *Writer) Write(p []byte) (int, error) { return 0, errors.New("sealedfile: not implemented") }

// Commit flushes zstd and age, fsyncs the file, renames it to its final
// name (refusing to replace an existing file) and fsyncs the directory.
func (w *Writer) Commit() (Stats, error) { return Stats{}, errors.New("sealedfile: not implemented") }

// Abort removes the temporary file. Safe after Commit (does nothing).
func (w *Writer) Abort() {}

// Reader opens a sealed file for reading plaintext.
type Reader struct{}

// Open decrypts path with identities and reads the skippable frame; a
// file that is not age, a wrong identity, or a payload without the frame
// are errors saying which.
func Open(path string, identities []age.Identity) (*Reader, error) {
	return nil, errors.New("sealedfile: not implemented")
}

// Key is the MAC key the file carries.
func (r *Reader) Key() [KeySize]byte { return [KeySize]byte{} }

// Read returns plaintext. A truncated or corrupted file is an error here
// (age authenticates every 64 KiB chunk and the final one), never a short
// clean EOF.
func (r *Reader) Read(p []byte) (int, error) { return 0, errors.New("sealedfile: not implemented") }

// Close ends the read; after a full read to EOF, Stats has the file's
// byte counts and sha256 (computed over the ciphertext as it was read).
func (r *Reader) Close() (Stats, error) { return Stats{}, errors.New("sealedfile: not implemented") }

// Rekey re-encrypts src to the new recipients into dst (another sealed
// file path), streaming: decrypt, re-encrypt, never decompressing; the
// payload and its key stay as they were.
func Rekey(src, dst string, identities []age.Identity, recipients []age.Recipient) (Stats, error) {
	return Stats{}, errors.New("sealedfile: not implemented")
}

// IsAge reports whether the first bytes of a file are age's header
// (binary or armored).
func IsAge(head []byte) bool { return false }
