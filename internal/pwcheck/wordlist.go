package pwcheck

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"unicode/utf8"
)

// maxWordLen is longer than any password worth guessing; a longer line is
// taken for a file that is not a word list.
const maxWordLen = 1024

// batchWords is how many words of a word list are held at once: the
// search reads a batch, tries it against every role, then reads the next,
// so memory does not grow with the list (rockyou.txt is 134 MB). A
// variable for the tests.
var batchWords = 4096

// LoadWordList checks a word list in one streaming pass (one password per
// line, as written; a line's trailing CR is dropped, nothing else; empty
// lines are skipped) and returns it ready to be searched. The words are
// not kept: the search reads the file again, batch by batch, and a file
// that changed in between is not counted as tried (its hash differs).
func LoadWordList(path string) (*List, error) {
	open := func() (io.ReadCloser, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, cleanErr(err))
		}
		return f, nil
	}
	return newWordList(path, open)
}

// ParseWordList is LoadWordList on data read from name.
func ParseWordList(name string, data []byte) (*List, error) {
	return newWordList(name, func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
}

func newWordList(name string, open func() (io.ReadCloser, error)) (*List, error) {
	r, err := openWords(name, open)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	n := 0
	for {
		_, err := r.nextBytes()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		n++
	}
	return &List{ID: r.id(), Verdict: WordList + " " + filepath.Base(name), name: name, open: open, n: n}, nil
}

// wordReader streams the words of a list. Words of the built-in lists are
// dropped (already tried); a repeated word is tried again, as keeping
// every word seen would keep the whole list in memory. A NUL byte (which
// no PostgreSQL password can hold) or an over-long line is an error
// naming the line; the word itself is never quoted.
type wordReader struct {
	name string
	rc   io.ReadCloser
	br   *bufio.Reader
	line int
	h    hash.Hash
}

func openWords(name string, open func() (io.ReadCloser, error)) (*wordReader, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	return &wordReader{name: name, rc: rc, br: bufio.NewReaderSize(rc, 64<<10), h: sha256.New()}, nil
}

func (r *wordReader) Close() error { return r.rc.Close() }

// id is the list's cache ID: a hash of the words tried, each followed by
// a newline, valid once next returned io.EOF.
func (r *wordReader) id() string {
	return "wordlist/" + hex.EncodeToString(r.h.Sum(nil))[:16]
}

var builtinWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range common {
		m[w] = true
	}
	return m
}()

func (r *wordReader) tooLong() error {
	return fmt.Errorf("%s:%d: line longer than %d bytes: not a word list", r.name, r.line, maxWordLen)
}

// next returns the next word to try, io.EOF at the end.
func (r *wordReader) next() (string, error) {
	b, err := r.nextBytes()
	return string(b), err
}

// nextBytes is next without the copy: the word is valid until the next
// call (the checking pass keeps nothing).
func (r *wordReader) nextBytes() ([]byte, error) {
	for {
		b, err := r.br.ReadSlice('\n')
		if len(b) == 0 && err == io.EOF {
			return nil, io.EOF
		}
		r.line++
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, r.tooLong()
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("%s:%d: %v", r.name, r.line, cleanErr(err))
		}
		b = bytes.TrimSuffix(b, []byte{'\n'})
		b = bytes.TrimSuffix(b, []byte{'\r'})
		if len(b) > maxWordLen {
			return nil, r.tooLong()
		}
		if i := bytes.IndexByte(b, 0); i >= 0 {
			return nil, fmt.Errorf("%s:%d: a NUL byte (column %d): PostgreSQL passwords cannot hold one; is this a word list?", r.name, r.line, utf8.RuneCount(b[:i])+1)
		}
		if len(b) == 0 || builtinWords[string(b)] {
			continue
		}
		r.h.Write(b)
		r.h.Write([]byte{'\n'})
		return b, nil
	}
}

// batch reads up to batchWords words; io.EOF only with none left.
func (r *wordReader) batch() ([]string, error) {
	var out []string
	for len(out) < batchWords {
		w, err := r.next()
		if err == io.EOF && len(out) > 0 {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}
