package pwcheck

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// maxWordLen is longer than any password worth guessing; a longer line is
// taken for a file that is not a word list.
const maxWordLen = 1024

// LoadWordList reads a word list: one password per line, as written (a
// line's trailing CR is dropped, nothing else; empty lines are skipped).
func LoadWordList(path string) (*List, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, cleanErr(err))
	}
	return ParseWordList(path, data)
}

// ParseWordList is LoadWordList on data read from name. Words of the
// built-in lists and repeated words are dropped (tried once). A NUL byte
// (which no PostgreSQL password can hold) or an over-long line is an
// error naming the line; the word itself is never quoted.
func ParseWordList(name string, data []byte) (*List, error) {
	builtin := map[string]bool{}
	for _, w := range common {
		builtin[w] = true
	}
	seen := map[string]bool{}
	text := string(data) // one copy; the words share it
	var words []string
	h := sha256.New()
	line := 0
	for len(text) > 0 {
		line++
		w := text
		if i := strings.IndexByte(text[:min(len(text), maxWordLen+2)], '\n'); i >= 0 {
			w, text = text[:i], text[i+1:]
		} else if len(text) > maxWordLen+1 {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes: not a word list", name, line, maxWordLen)
		} else {
			text = ""
		}
		if len(w) > 0 && w[len(w)-1] == '\r' {
			w = w[:len(w)-1]
		}
		if len(w) > maxWordLen {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes: not a word list", name, line, maxWordLen)
		}
		if i := strings.IndexByte(w, 0); i >= 0 {
			return nil, fmt.Errorf("%s:%d: a NUL byte (column %d): PostgreSQL passwords cannot hold one; is this a word list?", name, line, utf8.RuneCountInString(w[:i])+1)
		}
		if w == "" || builtin[w] || seen[w] {
			continue
		}
		seen[w] = true
		words = append(words, w)
		h.Write([]byte(w))
		h.Write([]byte{'\n'})
	}
	sum := hex.EncodeToString(h.Sum(nil))
	return &List{ID: "wordlist/" + sum[:16], Verdict: WordList + " " + filepath.Base(name), words: words}, nil
}
