package pwgen

import (
	"bytes"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"

	"github.com/pgaegis/pgaegis/internal/scram"
)

func TestGenerateShape(t *testing.T) {
	for _, tc := range []struct {
		alphabet string
		length   int
		want     int // characters
	}{
		{"", 0, DefaultLength},
		{Alnum, 16, 16},
		{Alnum, 1024, 1024},
		{ASCII, 16, 16},
		{ASCII, 64, 64},
		{Hex, 16, 16},
		{Hex, 128, 128},
		{Unicode, 16, 16},
		{Unicode, 32, 32},
		{Unicode, 1024, 1024},
	} {
		t.Run(tc.alphabet+"/"+itoa(tc.length), func(t *testing.T) {
			a := alphabets[Alnum]
			if tc.alphabet != "" {
				a = alphabets[tc.alphabet]
			}
			for range 50 {
				pw, err := Generate(Options{Length: tc.length, Alphabet: tc.alphabet})
				if err != nil {
					t.Fatal(err)
				}
				if !utf8.Valid(pw) {
					t.Fatal("not valid UTF-8")
				}
				if n := utf8.RuneCount(pw); n != tc.want {
					t.Fatalf("%d characters, want %d", n, tc.want)
				}
				seen := make([]bool, a.classes)
				for _, r := range string(pw) {
					i := slices.Index(a.runes, r)
					if i < 0 {
						t.Fatalf("rune U+%04X is not in the alphabet", r)
					}
					seen[a.classOf[i]] = true
				}
				if i := slices.Index(seen, false); i >= 0 {
					t.Fatalf("class %d is missing", i)
				}
			}
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "default"
	}
	return strconv.Itoa(n)
}

func TestAlphabetContents(t *testing.T) {
	for _, tc := range []struct {
		name      string
		size      int
		forbidden string
	}{
		{Alnum, 62, "!-_ "},
		{ASCII, 91, "'\"\\ \t\x7f"},
		{Hex, 16, "ABCDEFg"},
		{Unicode, 62 + 24 + 24 + 64 + 256, " \u00a0\u03a2\u03c2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := Runes(tc.name)
			if len(rs) != tc.size {
				t.Fatalf("%d runes, want %d", len(rs), tc.size)
			}
			sorted := slices.Clone(rs)
			slices.Sort(sorted)
			if len(slices.Compact(sorted)) != len(rs) {
				t.Fatal("a rune is listed twice (it would be drawn twice as often)")
			}
			for _, f := range tc.forbidden {
				if slices.Contains(rs, f) {
					t.Fatalf("holds U+%04X", f)
				}
			}
		})
	}
	if Runes("latin1") != nil {
		t.Fatal("Runes of an unknown alphabet")
	}
}

// Every rune of the unicode alphabet must survive both preparations a
// client may apply: SASLprep (PostgreSQL, libpq: scram.Prepare) and PRECIS
// OpaqueString (pgx), or the login would depend on the client.
func TestUnicodeAlphabetIsStable(t *testing.T) {
	for _, r := range Runes(Unicode) {
		s := string(r)
		if got := scram.Prepare([]byte(s)); string(got) != s {
			t.Errorf("SASLprep changes U+%04X to %q", r, got)
		}
		if got, err := precis.OpaqueString.String(s); err != nil || got != s {
			t.Errorf("PRECIS OpaqueString changes U+%04X: %q, %v", r, got, err)
		}
	}
	// Whole passwords too: neighbours must not compose.
	for range 20 {
		pw, err := Generate(Options{Length: 64, Alphabet: Unicode})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(scram.Prepare(pw), pw) {
			t.Error("SASLprep changes a generated password")
		}
		if got, err := precis.OpaqueString.Bytes(pw); err != nil || !bytes.Equal(got, pw) {
			t.Errorf("PRECIS changes a generated password (%v)", err)
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"negative", Options{Length: -1}, "length -1 is out of range 16..1024"},
		{"short", Options{Length: 15}, "length 15 is out of range"},
		{"long", Options{Length: MaxLength + 1}, "length 1025 is out of range"},
		{"alphabet", Options{Alphabet: "latin1"}, `unknown alphabet "latin1" (one of alnum, ascii, hex, unicode)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pw, err := Generate(tc.o)
			if err == nil || pw != nil {
				t.Fatalf("got %q, %v", pw, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want %q", err, tc.want)
			}
			if Bits(tc.o) != 0 {
				t.Fatal("Bits of invalid options")
			}
		})
	}
}

// repeatReader yields the same byte forever: every draw is the same rune,
// so no password ever holds every class.
type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// failReader yields n good bytes, then fails.
type failReader struct{ n int }

func (f *failReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("entropy gone")
	}
	k := min(len(p), f.n)
	for i := range k {
		p[i] = byte(i * 37)
	}
	f.n -= k
	return k, nil
}

// Errors must not carry what was drawn (a caller logs them), even when
// the random source fails after some characters were drawn.
func TestGenerateErrorsHoldNoOutput(t *testing.T) {
	defer func(r io.Reader) { randReader = r }(randReader)
	for _, tc := range []struct {
		name   string
		reader io.Reader
		want   string
	}{
		{"classes never complete", repeatReader(0), "pwgen: no password with every character class in 1000 draws (broken random source?)"},
		{"reader fails midway", &failReader{n: 20}, "pwgen: reading crypto/rand: entropy gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			randReader = tc.reader
			pw, err := Generate(Options{Length: 16})
			if err == nil || pw != nil {
				t.Fatalf("got %d bytes, %v", len(pw), err)
			}
			// The whole message is fixed text: nothing drawn can be in it.
			if err.Error() != tc.want {
				t.Fatalf("error %q, want %q", err, tc.want)
			}
		})
	}
}

// countReader serves every 16-bit value once, highest first (so the
// rejected ones come first), then fails.
type countReader struct{ next int }

func (c *countReader) Read(p []byte) (int, error) {
	n := 0
	for n+1 < len(p) && c.next < 1<<16 {
		v := 1<<16 - 1 - c.next
		p[n], p[n+1] = byte(v>>8), byte(v)
		n += 2
		c.next++
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Over the whole 16-bit input space every index comes out exactly equally
// often: no modulo bias, proven rather than sampled.
func TestDrawHasNoModuloBias(t *testing.T) {
	for _, n := range []int{10, 16, 62, 91, 430, 1000, 65535} {
		c := &countReader{}
		counts := make([]int, n)
		idx := make([]int, 1)
		accepted := 0
		for c.next < 1<<16 {
			saved := randReader
			randReader = c
			err := draw(idx, n)
			randReader = saved
			if err != nil {
				break // the space ran out during rejected values
			}
			counts[idx[0]]++
			accepted++
		}
		limit := 1<<16 - (1<<16)%n
		if accepted != limit {
			t.Fatalf("n=%d: %d accepted, want %d", n, accepted, limit)
		}
		for i, k := range counts {
			if k != limit/n {
				t.Fatalf("n=%d: index %d drawn %d times, want %d", n, i, k, limit/n)
			}
		}
	}
}

// chiSquareBound is far above any chi-square a uniform source produces
// with df degrees of freedom (about 8 standard deviations: odds of a false
// failure below 1e-14), yet a real bias over a large sample exceeds it.
func chiSquareBound(df int) float64 { return float64(df) + 8*math.Sqrt(2*float64(df)) + 10 }

// Within a class every rune must be equally likely (the class requirement
// changes how likely each class is, never the runes inside one), sampled
// from the real crypto/rand.
func TestGenerateIsUniformWithinClasses(t *testing.T) {
	for _, name := range Alphabets {
		t.Run(name, func(t *testing.T) {
			a := alphabets[name]
			counts := map[rune]int{}
			// ~1000 draws per rune: a byte-modulo bias (25% on some runes) shows
			// in every class.
			passwords := 1000 * len(a.runes) / 64
			for range passwords {
				pw, err := Generate(Options{Length: 64, Alphabet: name})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range string(pw) {
					counts[r]++
				}
			}
			for c := range a.classes {
				var members []rune
				total := 0
				for i, r := range a.runes {
					if a.classOf[i] == c {
						members = append(members, r)
						total += counts[r]
					}
				}
				want := float64(total) / float64(len(members))
				chi := 0.0
				for _, r := range members {
					d := float64(counts[r]) - want
					chi += d * d / want
				}
				if bound := chiSquareBound(len(members) - 1); chi > bound {
					t.Errorf("class %d (%d runes, %d draws): chi-square %.1f > %.1f", c, len(members), total, chi, bound)
				}
			}
		})
	}
}

func TestGenerateDiffers(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		pw, err := Generate(Options{})
		if err != nil {
			t.Fatal(err)
		}
		if seen[string(pw)] {
			t.Fatal("the same password twice")
		}
		seen[string(pw)] = true
	}
}

func TestBits(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want float64
	}{
		{Options{}, 32 * math.Log2(62)},
		{Options{Length: 16, Alphabet: Hex}, 64},
		{Options{Length: 20, Alphabet: ASCII}, 20 * math.Log2(91)},
		{Options{Length: 1024, Alphabet: Unicode}, 1024 * math.Log2(430)},
	} {
		if got := Bits(tc.o); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("Bits(%+v) = %v, want %v", tc.o, got, tc.want)
		}
	}
}
