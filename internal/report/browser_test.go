package report

import (
	"bytes"
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

// TestHTMLInBrowser renders the HTML report in headless Chromium: no
// console errors, the filter script ran, and a screenshot that is not
// blank is kept under testdata/ (uploadable as a CI artefact).
func TestHTMLInBrowser(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := WriteHTML(&b, withWaiver(build(t))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dom, logs := headless(t, bin, "--dump-dom", "file://"+page)
	if m := consoleError.FindString(logs); m != "" {
		t.Errorf("console error in the report page: %s\n%s", m, logs)
	}
	if !regexp.MustCompile(`id="count">\d+ of \d+ shown<`).MatchString(dom) {
		t.Errorf("the filter script did not run (no count in the rendered DOM)")
	}
	if !strings.Contains(dom, "AUTH-02") {
		t.Error("findings missing from the rendered DOM")
	}

	shot := filepath.Join(dir, "report.png")
	_, logs = headless(t, bin, "--screenshot="+shot, "--window-size=1280,1400", "--hide-scrollbars", "file://"+page)
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
