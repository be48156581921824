package report

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// chromium finds a headless browser (Debian's chromium package in CI).
func chromium(t *testing.T) string {
	for _, c := range []string{os.Getenv("PGAEGIS_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if c != "" {
			if _, err := os.Stat(c); err == nil {
				return c
			}
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium under CI=true (apt-get install chromium)")
	}
	t.Skip("no Chromium installed")
	return ""
}

func headless(t *testing.T, bin string, args ...string) (stdout, stderr string) {
	t.Helper()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0"}
	cmd := exec.Command(bin, append(base, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("chromium: %v\n%s", err, errb.String())
		}
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		t.Fatal("chromium did not finish")
	}
	return out.String(), errb.String()
}

var consoleError = regexp.MustCompile(`(?i)(CONSOLE.*(error|uncaught))|Uncaught|SyntaxError|ReferenceError|TypeError`)

// layoutProbe is appended to a copy of the page in the tests: it writes
// where the first-screen parts are into the DOM, which --dump-dom returns.
const layoutProbe = `<script>
(function () {
  var out = {vh: window.innerHeight, parts: {}};
  ['result', 'severity-chart', 'area-scores', 'top-risks'].forEach(function (id) {
    var el = document.getElementById(id);
    if (!el) { return; }
    var r = el.getBoundingClientRect();
    out.parts[id] = {top: r.top, bottom: r.bottom, text: el.innerText};
  });
  var axis = document.querySelector('#severity-chart svg').getBoundingClientRect().width;
  out.axis = axis;
  out.bars = {};
  document.querySelectorAll('#severity-chart rect.bar').forEach(function (b) { out.bars[b.dataset.sev] = b.getBoundingClientRect().width; });
  var pre = document.createElement('pre');
  pre.id = 'layout-probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>`

type layout struct {
	VH    float64 `json:"vh"`
	Axis  float64 `json:"axis"`
	Parts map[string]struct {
		Top, Bottom float64
		Text        string
	} `json:"parts"`
	Bars map[string]float64 `json:"bars"`
}

var probeRe = regexp.MustCompile(`(?s)<pre id="layout-probe">(.*?)</pre>`)

// TestHTMLInBrowser renders the HTML report in headless Chromium at a
// laptop's window size: no console errors, the filter script ran, and
// the first screen holds the result, the severity chart (on the fixed
// scale), the area scores and the top risks with why they matter. The
// screenshot of that screen is kept under $PGAEGIS_SCREENSHOT_DIR (a CI
// artefact) to be looked at.
func TestHTMLInBrowser(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := WriteHTML(&b, withWaiver(build(t))); err != nil {
		t.Fatal(err)
	}
	probed := strings.Replace(b.String(), "</body>", layoutProbe+"\n</body>", 1)
	if err := os.WriteFile(page, []byte(probed), 0o644); err != nil {
		t.Fatal(err)
	}
	const window = "--window-size=1280,900"
	dom, logs := headless(t, bin, window, "--dump-dom", "file://"+page)
	if m := consoleError.FindString(logs); m != "" {
		t.Errorf("console error in the report page: %s\n%s", m, logs)
	}
	if !regexp.MustCompile(`id="count">\d+ of \d+ rules shown<`).MatchString(dom) {
		t.Errorf("the filter script did not run (no count in the rendered DOM)")
	}
	if !strings.Contains(dom, "AUTH-02") {
		t.Error("findings missing from the rendered DOM")
	}
	m := probeRe.FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("the layout probe did not run")
	}
	var l layout
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &l); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id, text string
		whole    bool // entirely on the first screen, not only started
	}{
		{"result", "FAIL", true},
		{"severity-chart", "Failing findings by severity", true},
		{"area-scores", "authentication", true},
		// The first risk with its rationale: why it matters, in words.
		{"top-risks", "rewrite /etc/postgresql/15/main/pg_hba.conf", false},
		{"top-risks", "replayable from a stolen hash", false},
	} {
		p, ok := l.Parts[c.id]
		switch {
		case !ok:
			t.Errorf("#%s missing from the page", c.id)
		case p.Top < 0 || p.Top >= l.VH || (c.whole && p.Bottom > l.VH):
			t.Errorf("#%s is not on the first screen (top %.0f, bottom %.0f, window %.0f)", c.id, p.Top, p.Bottom, l.VH)
		case !strings.Contains(p.Text, c.text):
			t.Errorf("#%s does not say %q:\n%s", c.id, c.text, p.Text)
		}
	}
	// Fixed scale: 9 high findings use a quarter of the axis, not all of it.
	if l.Bars["high"] <= l.Bars["medium"] || l.Bars["medium"] <= 0 || l.Bars["high"] > 0.4*l.Axis {
		t.Errorf("severity bars not on the fixed scale: %v (axis %.0f px)", l.Bars, l.Axis)
	}
	if _, ok := l.Bars["critical"]; ok {
		t.Errorf("a bar for critical, which has no finding: %v", l.Bars)
	}

	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "report.png")
	_, logs = headless(t, bin, "--screenshot="+shot, window, "--hide-scrollbars", "file://"+page)
	if m := consoleError.FindString(logs); m != "" {
		t.Errorf("console error while taking the screenshot: %s", m)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, logs)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// Not blank: the header band is dark, the page light, severity colours present.
	colors := map[uint32]bool{}
	bnd := img.Bounds()
	for y := bnd.Min.Y; y < bnd.Max.Y; y += 7 {
		for x := bnd.Min.X; x < bnd.Max.X; x += 7 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[(r>>12)<<8|(g>>12)<<4|bl>>12] = true
		}
	}
	if len(colors) < 20 {
		t.Errorf("screenshot looks blank: %d distinct colours", len(colors))
	}
	if out := os.Getenv("PGAEGIS_SCREENSHOT_DIR"); out != "" {
		data, _ := os.ReadFile(shot)
		os.WriteFile(filepath.Join(out, "report.png"), data, 0o644)
	}
}

var pdfPage = regexp.MustCompile(`/Type\s*/Page[^s]`)

// TestPDF prints the report with headless Chromium: a PDF of several
// pages whose text has the summary and the findings (every card open).
func TestPDF(t *testing.T) {
	bin := chromium(t)
	var b bytes.Buffer
	if err := WritePDF(context.Background(), &b, withWaiver(build(t)), PDFOptions{Chromium: bin}); err != nil {
		t.Fatal(err)
	}
	data := b.Bytes()
	if !bytes.HasPrefix(data, []byte("%PDF-")) {
		t.Fatalf("not a PDF: %q", data[:min(len(data), 16)])
	}
	pdftotext, err := exec.LookPath("pdftotext")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no pdftotext under CI=true (apt-get install poppler-utils)")
		}
		if n := len(pdfPage.FindAll(data, -1)); n < 2 {
			t.Errorf("%d pages, want the summary and the detail", n)
		}
		t.Skip("pdftotext not installed: checked the header and the page count only")
	}
	path := filepath.Join(t.TempDir(), "r.pdf")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(pdftotext, "-layout", path, "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	if pages := strings.Count(text, "\f"); pages < 2 {
		t.Errorf("%d pages, want the summary and the detail", pages)
	}
	for _, want := range []string{"FAIL", "Top risks", "Score by area", "AUTH-02", "hostssl all all 0.0.0.0/0 scram-sha-256",
		// A closed card would not print its body: print mode opens them.
		"Why it matters", "CIS PostgreSQL 17 Benchmark"} {
		// Labels are upper-cased by the stylesheet, and so in the PDF's text.
		if !strings.Contains(strings.ToLower(text), strings.ToLower(want)) {
			t.Errorf("the PDF lacks %q", want)
		}
	}
	if strings.Contains(text, "Filter by rule") {
		t.Error("the PDF shows the filters")
	}
}

// TestPDFWithoutChromium names what is missing instead of failing later.
func TestPDFWithoutChromium(t *testing.T) {
	for _, c := range []struct {
		name, path, env string
		want            []string
	}{
		{"nothing in PATH", t.TempDir(), "", []string{"needs Chromium", "chromium", "google-chrome", "PGAEGIS_CHROMIUM", "--format html"}},
		{"a wrong PGAEGIS_CHROMIUM", t.TempDir(), "/nonexistent/chromium", []string{"PGAEGIS_CHROMIUM=/nonexistent/chromium"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("PATH", c.path)
			t.Setenv("PGAEGIS_CHROMIUM", c.env)
			var b bytes.Buffer
			err := WritePDF(context.Background(), &b, build(t), PDFOptions{})
			if err == nil {
				t.Fatal("no error without a browser")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if b.Len() != 0 {
				t.Error("output written without a browser")
			}
		})
	}
}
