package web

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pgaegis/pgaegis/internal/store"
)

// chromium finds a headless browser: under CI=true a missing one fails
// the test (CI installs Debian's chromium), elsewhere it skips.
func chromium(t *testing.T) string {
	for _, c := range []string{os.Getenv("PGAEGIS_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if c == "" {
			continue
		}
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium under CI=true (apt-get install chromium)")
	}
	t.Skip("no Chromium installed (apt-get install chromium)")
	return ""
}

// shot saves a full-page PNG under the test's directory and, with
// PGAEGIS_SCREENSHOTS=dir, a copy there to look at.
func shot(t *testing.T, dir, name string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var b []byte
		if err := chromedp.FullScreenshot(&b, 100).Do(ctx); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644); err != nil {
			return err
		}
		if out := os.Getenv("PGAEGIS_SCREENSHOTS"); out != "" {
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(out, name+".png"), b, 0o644)
		}
		return nil
	})
}

// TestBrowser drives the dashboard in headless Chromium as a user does:
// the login form, the fleet, a server, a filter, a finding's history, the
// certificates.
func TestBrowser(t *testing.T) {
	bin := chromium(t)
	_, hs := dashboard(t, Options{})
	tok := token(t, fleetStore(t), store.RoleOperator)
	dir := t.TempDir()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.UserDataDir(profileDir(t)),
		chromedp.WindowSize(1280, 900), chromedp.DisableGPU)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium's sandbox refuses to run as root
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()

	var loc, fleetText, serverText, shown, histText, certsText string
	var rowsShown int
	var afterLogout, rowText string
	err := chromedp.Run(ctx,
		// Not logged in: the fleet page sends the browser to the form.
		chromedp.Navigate(hs.URL+"/"),
		chromedp.WaitVisible(`#token`, chromedp.ByID),
		chromedp.Location(&loc),
		shot(t, dir, "1-login"),
		chromedp.SendKeys(`#token`, tok, chromedp.ByID),
		chromedp.Click(`#login`, chromedp.ByID),
		chromedp.WaitVisible(`#fleet`, chromedp.ByID),
		chromedp.Text(`#fleet`, &fleetText, chromedp.ByID),
		shot(t, dir, "2-fleet"),
		// Open the real server.
		chromedp.Click(`a.server[href="/servers/`+realServer+`"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#findings`, chromedp.ByID),
		chromedp.Text(`main`, &serverText, chromedp.ByQuery),
		shot(t, dir, "3-server"),
		// Filter the findings by text (a GET form: no script).
		chromedp.SendKeys(`input[name="q"]`, "web_boss", chromedp.ByQuery),
		chromedp.Click(`#apply-filter`, chromedp.ByID),
		// The unfiltered page has #shown too: wait for the new page, whose
		// field carries the value in its attribute (typing does not set it).
		chromedp.WaitVisible(`input[name="q"][value="web_boss"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#shown`, chromedp.ByID),
		chromedp.Text(`#shown`, &shown, chromedp.ByID),
		chromedp.Evaluate(`document.querySelectorAll("table.findings tbody tr").length`, &rowsShown),
		shot(t, dir, "4-filtered"),
		chromedp.Evaluate(`Array.from(document.querySelectorAll("table.findings tbody tr")).map(r => r.innerText).join("\n")`, &rowText),
		// A finding's history.
		chromedp.Click(`a.hist`, chromedp.ByQuery),
		chromedp.WaitVisible(`#history`, chromedp.ByID),
		chromedp.Text(`main`, &histText, chromedp.ByQuery),
		shot(t, dir, "5-history"),
		chromedp.Navigate(hs.URL+"/certificates"),
		chromedp.WaitVisible(`#certs`, chromedp.ByID),
		chromedp.Text(`#certs`, &certsText, chromedp.ByID),
		shot(t, dir, "6-certificates"),
		// The operator's page.
		chromedp.Navigate(hs.URL+"/tokens"),
		chromedp.WaitVisible(`#tokens`, chromedp.ByID),
		shot(t, dir, "7-tokens"),
		// Logging out through the form (a POST with the CSRF field) ends the session.
		chromedp.Click(`header form.who button`, chromedp.ByQuery),
		chromedp.WaitVisible(`#token`, chromedp.ByID),
		chromedp.Navigate(hs.URL+"/certificates"),
		chromedp.WaitVisible(`#token`, chromedp.ByID),
		chromedp.Location(&afterLogout),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if !strings.Contains(loc, "/login?next=") {
		t.Errorf("not sent to the login form: %s", loc)
	}
	for _, s := range []string{realServer, "gen-a", "gen-never", "never"} {
		if !strings.Contains(fleetText, s) {
			t.Errorf("fleet page lacks %q", s)
		}
	}
	if !strings.Contains(serverText, "Since the previous scan") || !strings.Contains(serverText, "web_boss") {
		t.Errorf("server page lacks the drift (web_boss made superuser):\n%.2000s", serverText)
	}
	// The rest of fleet diff's drift: the role itself appeared.
	if !regexp.MustCompile(`Roles\s[\s\S]*\+\s+web_boss\s+role added\s+[^\n]*superuser`).MatchString(serverText) {
		t.Errorf("server page lacks the role change (web_boss added, superuser):\n%.3000s", serverText)
	}
	if !regexp.MustCompile(`pg_hba.conf lines\s[\s\S]*\+\s+\S*pg_hba.conf:\d+\s+host all all 127.0.0.1/32 trust`).MatchString(serverText) ||
		!regexp.MustCompile(`new\s+critical\s+AUTH-01`).MatchString(serverText) {
		t.Errorf("server page lacks the trust line added (pg_hba.conf line, new AUTH-01):\n%.3000s", serverText)
	}
	if rowsShown == 0 || !strings.Contains(shown, " of ") {
		t.Errorf("filter web_boss shows %d rows (%q)", rowsShown, shown)
	}
	for _, l := range strings.Split(rowText, "\n") {
		if l != "" && !strings.Contains(strings.ToLower(l), "web_boss") && !strings.Contains(l, "history") {
			t.Errorf("a row the filter should hide: %q", l)
		}
	}
	if !strings.Contains(histText, "open") || !strings.Contains(histText, "first seen failing") {
		t.Errorf("history page:\n%.1500s", histText)
	}
	// Soonest expiry first: gen-d (expired 3 days ago), then gen-c (5 days).
	if d, c, a := strings.Index(certsText, "gen-d"), strings.Index(certsText, "gen-c"), strings.Index(certsText, "gen-a"); d < 0 || c < d || a < c {
		t.Errorf("certificates not by expiry:\n%s", certsText)
	}
	if !strings.Contains(afterLogout, "/login?next=%2Fcertificates") {
		t.Errorf("after logout /certificates went to %s, not the login form", afterLogout)
	}
	t.Logf("screenshots in %s", dir)
}

// profileDir is Chromium's profile directory. Not t.TempDir: helper
// processes (crashpad) may still write into it for a moment after the
// browser is gone, and TempDir's cleanup fails the test on a busy machine.
func profileDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "pgaegis-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 50; i++ {
			if os.RemoveAll(d) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("profile directory %s not removed", d)
	})
	return d
}
