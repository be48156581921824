package leakscan

import (
	"bytes"
	"testing"
)

func TestForms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"plain", []string{"plain"}},
		{`a'b`, []string{`a'b`, `a''b`}},
		{`a"b\c`, []string{`a"b\c`, `a""b\c`, `a\"b\\c`}},
		{"tab\there", []string{"tab\there", `tab\there`}},
		{"\x01", []string{"\x01", `\u0001`}},
		{`'"`, []string{`'"`, `'""`, `'\"`, `''"`, `''""`, `''\"`}},
		{"héllo", []string{"héllo"}},
	} {
		got := forms([]byte(tc.in))
		if len(got) != len(tc.want) {
			t.Errorf("forms(%q) = %q, want %q", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if string(got[i]) != tc.want[i] {
				t.Errorf("forms(%q)[%d] = %q, want %q", tc.in, i, got[i], tc.want[i])
			}
		}
	}
}

// found says whether the finder, fed data in chunks of size chunk, finds
// needle.
func found(data, needle []byte, chunk int) bool {
	f := newFinder([]Needle{{"n", needle}})
	var s stream
	for i := 0; i < len(data); i += chunk {
		f.feed(&s, data[i:min(i+chunk, len(data))])
	}
	return len(f.found(&s)) == 1
}

// Fed in chunks of any size, the finder finds a needle exactly when one of
// its forms is in the data as a whole.
func FuzzFinder(f *testing.F) {
	f.Add([]byte("xxSCRAM-SHA-256$4096:abc$def:ghixx"), []byte("abc$def"), uint8(3))
	f.Add([]byte("it''s"), []byte("it's"), uint8(1))
	f.Add([]byte(`{"m":"a\"b"}`), []byte(`a"b`), uint8(5))
	f.Add([]byte("aaaa"), []byte("aaaaa"), uint8(2))
	f.Add([]byte(""), []byte(""), uint8(0))
	f.Fuzz(func(t *testing.T, data, needle []byte, c uint8) {
		chunk := int(c%64) + 1
		want := false
		if len(needle) > 0 {
			for _, fm := range forms(needle) {
				want = want || bytes.Contains(data, fm)
			}
		}
		if got := found(data, needle, chunk); got != want {
			t.Fatalf("data %q needle %q chunk %d: found %v, want %v", data, needle, chunk, got, want)
		}
	})
}

func TestFinderStreams(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 100)
	copy(data[40:], "secret")
	for chunk := 1; chunk <= 101; chunk++ {
		if !found(data, []byte("secret"), chunk) {
			t.Errorf("chunk %d: not found", chunk)
		}
		if found(data, []byte("secreu"), chunk) {
			t.Errorf("chunk %d: found what is not there", chunk)
		}
	}
	// Two streams (files) do not run into each other; the barrier is
	// found across chunks and is no hit.
	f := newFinder([]Needle{{"n", []byte("ab")}})
	f.withBarrier([]byte("barrier"))
	var s1, s2 stream
	f.feed(&s1, []byte("xa bar"))
	f.feed(&s2, []byte("bx"))
	f.feed(&s1, []byte("rier"))
	if got := append(f.found(&s1), f.found(&s2)...); len(got) > 0 {
		t.Errorf("found across two files: %v", got)
	}
	if !s1.barrier || s2.barrier {
		t.Errorf("barrier: %v %v", s1.barrier, s2.barrier)
	}
}
