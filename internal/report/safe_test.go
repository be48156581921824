package report

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// hostile retitles the terminal, clears it, reverses the text after it and
// fakes a line of the report.
const hostile = "evil\x1b]0;owned\x07\x1b[2J\x1b[8m\u202etxt.exe\r\nresult: PASS\x9b"

// poison sets every string field reachable from v to hostile.
func poison(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		if v.CanSet() {
			v.SetString(v.String() + hostile)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			c := reflect.New(v.Type().Elem()) // never write through shared pointers
			c.Elem().Set(v.Elem())
			v.Set(c)
			poison(v.Elem())
		}
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len()) // rule metadata is shared
		reflect.Copy(c, v)
		v.Set(c)
		for i := 0; i < v.Len(); i++ {
			poison(v.Index(i))
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				poison(v.Field(i))
			}
		}
	}
}

func hostileReport(t *testing.T) *Report {
	r := withWaiver(build(t))
	r.Baseline = &BaselineDiff{Path: "last.json", CollectedAt: "2026-11-01", Fixed: []rules.Finding{r.Findings[len(r.Findings)-1]}}
	r.Warnings = []string{"waiver matches nothing"}
	r.Gaps = map[string]string{"files" + hostile: "not on this host"}
	for i := range r.Findings {
		if r.Findings[i].Waiver == nil && i%2 == 0 {
			r.Findings[i].Waiver = &rules.Waiver{Reason: "r", Expires: "2020-01-01", Expired: true, Owner: "o"}
		}
	}
	sum := r.Summary // ours, not a name: keep the real result line
	poison(reflect.ValueOf(r).Elem())
	r.Summary = sum
	return r
}

// The writer's own colour codes are the only escape sequences allowed out.
var ownSGR = strings.NewReplacer(ansiReset, "", ansiBold, "", ansiDim, "", ansiRed, "", ansiYellow, "", ansiBlue, "", ansiGreen, "", ansiMag, "")

func TestHumanWritersEscapeHostileText(t *testing.T) {
	writers := []struct {
		name  string
		write func(*bytes.Buffer, *Report) error
	}{
		{"text", func(b *bytes.Buffer, r *Report) error { return WriteText(b, r, TextOptions{Verbose: true}) }},
		{"text colour", func(b *bytes.Buffer, r *Report) error {
			return WriteText(b, r, TextOptions{Color: true, Verbose: true})
		}},
		{"markdown", func(b *bytes.Buffer, r *Report) error { return WriteMarkdown(b, r) }},
		{"html", func(b *bytes.Buffer, r *Report) error { return WriteHTML(b, r) }},
	}
	for _, w := range writers {
		t.Run(w.name, func(t *testing.T) {
			r := hostileReport(t)
			before := r.Findings[0].Object
			var b bytes.Buffer
			if err := w.write(&b, r); err != nil {
				t.Fatal(err)
			}
			if r.Findings[0].Object != before {
				t.Error("the writer changed the report it was given")
			}
			out := b.String()
			if !strings.Contains(out, `\x1b]0;owned\x07`) {
				t.Error("the hostile name is not shown escaped")
			}
			if w.name == "text colour" && !strings.Contains(out, ansiBold) {
				t.Error("colour codes are gone")
			}
			clean := ownSGR.Replace(out)
			if i := textsafe.FirstUnsafe(clean); i >= 0 {
				t.Errorf("raw control or bidi character at byte %d: %q", i, clean[max(0, i-40):min(len(clean), i+20)])
			}
			for _, l := range strings.Split(clean, "\n") {
				if !strings.HasPrefix(w.name, "text") {
					break // HTML and Markdown have their own structure
				}
				if strings.HasPrefix(l, "result: PASS") { // multi-line fields are indented
					t.Errorf("a name faked a line of the report: %q", l)
				}
			}
		})
	}
}

func TestMarkdownEscapesMetacharacters(t *testing.T) {
	r := build(t)
	for i := range r.Findings {
		if r.Findings[i].Status != rules.Fail {
			r.Findings[i].Object = "x | <img src=x onerror=alert(1)> [a](http://e) &#x202e; **b**"
		}
	}
	var b bytes.Buffer
	if err := WriteMarkdown(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, bad := range []string{"<img", "&#x202e;", "[a](", "**b**", "| <"} {
		if strings.Contains(out, bad) {
			t.Errorf("markdown output keeps %q active", bad)
		}
	}
}

// A fix or evidence holding a code fence cannot end the block early, and
// stays byte for byte what it was (a zero-width space would change the
// pasted fix and is itself a character the terminal hides).
func TestMarkdownFencesHoldBackticks(t *testing.T) {
	r := build(t)
	const fix = "SELECT 1;\n```\n# heading <script>\n````"
	for i := range r.Findings {
		if r.Findings[i].Status == rules.Fail {
			r.Findings[i].Fix = fix
			r.Findings[i].Evidence = "a\n```\nb"
		}
	}
	var b bytes.Buffer
	if err := WriteMarkdown(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "`````sql\n"+fix+"\n`````\n") && !strings.Contains(out, "`````\n"+fix+"\n`````\n") {
		t.Errorf("the fix is not fenced as it is:\n%s", out)
	}
	if !strings.Contains(out, "````\na\n```\nb\n````") {
		t.Errorf("multi-line evidence is not fenced as it is:\n%s", out)
	}
	if i := textsafe.FirstUnsafe(out); i >= 0 {
		t.Errorf("unsafe character at %d: %q", i, out[max(0, i-20):min(len(out), i+20)])
	}
}
