package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// PDFOptions shape the PDF report.
type PDFOptions struct {
	// Chromium is the browser to print with; "" looks for one
	// ($PGAEGIS_CHROMIUM, then chromium, chromium-browser, google-chrome
	// in PATH).
	Chromium string
	// Timeout bounds the browser (default 2 minutes).
	Timeout time.Duration
}

// chromiumNames are the browsers that print with --print-to-pdf.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// FindChromium finds a headless-capable Chromium, or says what was
// looked for.
func FindChromium() (string, error) {
	if p := os.Getenv("PGAEGIS_CHROMIUM"); p != "" {
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			return "", fmt.Errorf("--format pdf: PGAEGIS_CHROMIUM=%s is not a browser executable", p)
		}
		return p, nil
	}
	for _, n := range chromiumNames {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", errors.New("--format pdf needs Chromium or Google Chrome on this host, and none was found (looked for " +
		strings.Join(chromiumNames, ", ") + " in PATH, and $PGAEGIS_CHROMIUM): install one (apt-get install chromium), " +
		"or write --format html and print that page")
}

// WritePDF prints the HTML report (its print layout: every finding open,
// no filters) to PDF with headless Chromium.
func WritePDF(ctx context.Context, w io.Writer, r *Report, o PDFOptions) error {
	bin := o.Chromium
	if bin == "" {
		var err error
		if bin, err = FindChromium(); err != nil {
			return err
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	dir, err := os.MkdirTemp("", "pgaegis-pdf-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	page, out := filepath.Join(dir, "report.html"), filepath.Join(dir, "report.pdf")
	var html bytes.Buffer
	if err := WriteHTMLWith(&html, r, HTMLOptions{Print: true}); err != nil {
		return err
	}
	if err := os.WriteFile(page, html.Bytes(), 0o600); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	// --no-sandbox: the sandbox needs user namespaces, often missing in
	// containers and refused for root; the page is our own, with no
	// network resource.
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--no-pdf-header-footer", "--print-to-pdf="+out, "file://"+page)
	// The browser starts helper processes: end the whole group on timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	runErr := cmd.Run()
	data, readErr := os.ReadFile(out)
	if runErr != nil || readErr != nil || !bytes.HasPrefix(data, []byte("%PDF-")) {
		why := runErr
		if why == nil {
			why = readErr
		}
		if ctx.Err() != nil {
			why = fmt.Errorf("no PDF after %s", o.Timeout)
		}
		if why == nil {
			why = errors.New("the output is not a PDF")
		}
		return fmt.Errorf("--format pdf: %s could not print the report: %v%s", bin, why, lastLines(stderr.String(), 3))
	}
	_, err = w.Write(data)
	return err
}

// lastLines is the end of a browser's stderr, for an error message.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\n  " + strings.Join(lines, "\n  ")
}
