package web

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/store"
)

func noRedirect(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestEveryRouteNeedsAToken: without a token, or with a wrong one, no
// route answers but the login form: pages send a browser to it, the rest
// get 401.
func TestEveryRouteNeedsAToken(t *testing.T) {
	_, hs := dashboard(t, Options{})
	c := noRedirect(nil)
	for _, rt := range Routes() {
		method, path, _ := strings.Cut(rt, " ")
		for _, tc := range []struct {
			name, auth, accept string
			want               []int
		}{
			{"none", "", "", []int{401}},
			{"browser", "", "text/html", []int{303, 401}},
			{"wrong bearer", "Bearer pgaegis_wrong", "text/html", []int{401}},
			{"basic", "Basic YTpi", "", []int{401}},
		} {
			req, _ := http.NewRequest(method, hs.URL+path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			ok := false
			for _, w := range tc.want {
				ok = ok || resp.StatusCode == w
			}
			if !ok {
				t.Errorf("%s (%s): %d, want %v", rt, tc.name, resp.StatusCode, tc.want)
			}
			if resp.StatusCode == 303 && !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
				t.Errorf("%s (%s): redirect to %q", rt, tc.name, resp.Header.Get("Location"))
			}
			if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: 401 without WWW-Authenticate", rt)
			}
			if strings.Contains(string(body), "pg-real") || strings.Contains(string(body), "pgaegis_findings") {
				t.Errorf("%s (%s): refused response shows fleet data", rt, tc.name)
			}
		}
	}
	// /metrics is never a redirect, even for a browser.
	req, _ := http.NewRequest("GET", hs.URL+"/metrics", nil)
	req.Header.Set("Accept", "text/html")
	if resp, _ := c.Do(req); resp.StatusCode != 401 {
		t.Errorf("/metrics from a browser without a token: %d", resp.StatusCode)
	}
}

// login logs a cookie jar in through the form, as a browser does.
func login(t *testing.T, base, tok string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := noRedirect(jar)
	resp := get(t, c, base+"/login", "")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csrf := formCSRF(t, string(body))
	resp, err := c.PostForm(base+"/login", url.Values{"csrf": {csrf}, "token": {tok}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = get(t, c, base+"/", "")
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("fleet page after login: %d", resp.StatusCode)
	}
	return c, formCSRF(t, string(body))
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func formCSRF(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in the page")
	}
	return m[1]
}

func TestSessionCookieAndCSRF(t *testing.T) {
	_, hs := dashboard(t, Options{})
	st := fleetStore(t)
	tok := token(t, st, store.RoleOperator)
	c, csrf := login(t, hs.URL, tok)
	u, _ := url.Parse(hs.URL)
	var sess *http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			sess = ck
		}
	}
	if sess == nil {
		t.Fatal("no session cookie")
	}
	// The jar hides the attributes: read them off a fresh login.
	resp := get(t, c, hs.URL+"/login", "")
	lb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp, _ = noRedirect(nil).Do(postReq(hs.URL+"/login", url.Values{"csrf": {formCSRF(t, string(lb))}, "token": {tok}}, loginCookieOf(c, u)))
	setc := strings.Join(resp.Header.Values("Set-Cookie"), "\n")
	if !strings.Contains(setc, sessionCookie+"=") || !strings.Contains(setc, "HttpOnly") || !strings.Contains(setc, "SameSite=Strict") {
		t.Errorf("session cookie attributes: %s", setc)
	}
	if strings.Contains(setc, "Secure") {
		t.Errorf("Secure cookie on plain HTTP (the browser would drop it): %s", setc)
	}
	if strings.Contains(setc, tok) {
		t.Error("the token is in a cookie")
	}

	revokeID := itoa(tokenID(t, st, token(t, st, store.RoleReadOnly)))
	for _, tc := range []struct {
		name string
		form url.Values
		hdr  map[string]string
		want int
	}{
		{"no csrf", url.Values{}, nil, 403},
		{"wrong csrf", url.Values{"csrf": {"x" + csrf}}, nil, 403},
		{"cross-site", url.Values{"csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"other origin", url.Values{"csrf": {csrf}}, map[string]string{"Origin": "https://evil.example"}, 403},
		{"null origin", url.Values{"csrf": {csrf}}, map[string]string{"Origin": "null"}, 403},
		{"good", url.Values{"csrf": {csrf}}, map[string]string{"Origin": hs.URL, "Sec-Fetch-Site": "same-origin"}, 303},
	} {
		req := postReq(hs.URL+"/tokens/"+revokeID+"/revoke", tc.form, nil)
		for k, v := range tc.hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("revoke, %s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	// Login itself is CSRF-protected (no login cookie: refused).
	resp, _ = noRedirect(nil).PostForm(hs.URL+"/login", url.Values{"csrf": {"abc"}, "token": {tok}})
	if resp.StatusCode != 403 {
		t.Errorf("login without the form's CSRF cookie: %d", resp.StatusCode)
	}
	// Logout needs the CSRF token too, then ends the session.
	resp, _ = c.Do(postReq(hs.URL+"/logout", url.Values{}, nil))
	if resp.StatusCode != 403 {
		t.Errorf("logout without csrf: %d", resp.StatusCode)
	}
	resp, _ = c.Do(postReq(hs.URL+"/logout", url.Values{"csrf": {csrf}}, nil))
	if resp.StatusCode != 303 {
		t.Errorf("logout: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", hs.URL+"/", nil)
	req.AddCookie(sess)
	if resp, _ = noRedirect(nil).Do(req); resp.StatusCode != 401 {
		t.Errorf("the session cookie after logout: %d", resp.StatusCode)
	}
}

func loginCookieOf(c *http.Client, u *url.URL) *http.Cookie {
	lu := *u
	lu.Path = "/login"
	for _, ck := range c.Jar.Cookies(&lu) {
		if ck.Name == loginCookie {
			return ck
		}
	}
	return nil
}

func postReq(u string, form url.Values, ck *http.Cookie) *http.Request {
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if ck != nil {
		req.AddCookie(ck)
	}
	return req
}

func tokenID(t *testing.T, st store.Store, tok string) int64 {
	t.Helper()
	tt, err := st.LookupToken(context.Background(), HashToken(tok), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tt.ID
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestRoles: read-only sees pages and /metrics, not the operator's; a
// revoked token stops at once, its sessions too.
func TestRoles(t *testing.T) {
	_, hs := dashboard(t, Options{})
	st := fleetStore(t)
	ro, op := token(t, st, store.RoleReadOnly), token(t, st, store.RoleOperator)
	c := noRedirect(nil)
	for _, p := range []string{"/", "/servers/" + realServer, "/certificates", "/metrics"} {
		if r := get(t, c, hs.URL+p, ro); r.StatusCode != 200 {
			t.Errorf("read-only %s: %d", p, r.StatusCode)
		}
	}
	if r := get(t, c, hs.URL+"/tokens", ro); r.StatusCode != 403 {
		t.Errorf("read-only /tokens: %d", r.StatusCode)
	}
	victim := token(t, st, store.RoleReadOnly)
	vc, _ := login(t, hs.URL, victim)
	id := itoa(tokenID(t, st, victim))
	req := postReq(hs.URL+"/tokens/"+id+"/revoke", nil, nil)
	req.Header.Set("Authorization", "Bearer "+ro)
	if r, _ := c.Do(req); r.StatusCode != 403 {
		t.Errorf("read-only revoke: %d", r.StatusCode)
	}
	if r := get(t, c, hs.URL+"/tokens", op); r.StatusCode != 200 {
		t.Errorf("operator /tokens: %d", r.StatusCode)
	}
	req = postReq(hs.URL+"/tokens/"+id+"/revoke", nil, nil)
	req.Header.Set("Authorization", "Bearer "+op)
	if r, _ := c.Do(req); r.StatusCode != 303 {
		t.Errorf("operator revoke: %d", r.StatusCode)
	}
	if r := get(t, c, hs.URL+"/metrics", victim); r.StatusCode != 401 {
		t.Errorf("revoked bearer: %d", r.StatusCode)
	}
	if r := get(t, vc, hs.URL+"/", ""); r.StatusCode != 401 {
		t.Errorf("session of a revoked token: %d", r.StatusCode)
	}
}

func TestSecurityHeaders(t *testing.T) {
	_, hs := dashboard(t, Options{})
	tok := token(t, fleetStore(t), store.RoleReadOnly)
	for _, p := range []string{"/login", "/", "/servers/" + realServer, "/metrics", "/static/style.css", "/nope"} {
		r := get(t, noRedirect(nil), hs.URL+p, tok)
		h := r.Header
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") ||
			!strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"} {
			if h.Get(k) != v {
				t.Errorf("%s: %s = %q", p, k, h.Get(k))
			}
		}
		if h.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS over plain HTTP", p)
		}
	}
}

func TestLoginRateLimit(t *testing.T) {
	clock := fixNow
	s, hs := dashboard(t, Options{Now: func() time.Time { return clock }})
	_ = s
	jar, _ := cookiejar.New(nil)
	c := noRedirect(jar)
	attempt := func() int {
		resp := get(t, c, hs.URL+"/login", "")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r, err := c.PostForm(hs.URL+"/login", url.Values{"csrf": {formCSRF(t, string(b))}, "token": {"pgaegis_guess"}})
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	for i := range 5 {
		if code := attempt(); code != 401 {
			t.Fatalf("attempt %d: %d, want 401", i+1, code)
		}
	}
	if code := attempt(); code != 429 {
		t.Fatalf("sixth attempt at once: %d, want 429", code)
	}
	// Even the right token waits: the limit is on attempts.
	good := token(t, fleetStore(t), store.RoleReadOnly)
	resp := get(t, c, hs.URL+"/login", "")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if r, _ := c.PostForm(hs.URL+"/login", url.Values{"csrf": {formCSRF(t, string(b))}, "token": {good}}); r.StatusCode != 429 {
		t.Errorf("good token while limited: %d", r.StatusCode)
	}
	clock = clock.Add(13 * time.Second)
	if code := attempt(); code != 401 {
		t.Errorf("after the refill: %d, want 401", code)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{"/servers/x": "/servers/x", "//evil.example": "/", "https://evil.example": "/", "/\\evil": "/", "": "/", "/a\r\nb": "/"} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRevokeFromCLI: a token revoked in the store by another process
// ('pgaegis serve token revoke') stops working in a running dashboard
// once the lookup is rechecked, for bearer requests and for its sessions.
func TestRevokeFromCLI(t *testing.T) {
	clock := fixNow
	s, hs := dashboard(t, Options{Now: func() time.Time { return clock }})
	tok := token(t, s.st, store.RoleReadOnly)
	c, _ := login(t, hs.URL, tok)
	status := func(c *http.Client, bearer string) int {
		resp := get(t, c, hs.URL+"/", bearer)
		resp.Body.Close()
		return resp.StatusCode
	}
	plain := noRedirect(nil)
	if a, b := status(plain, tok), status(c, ""); a != 200 || b != 200 {
		t.Fatalf("before the revoke: bearer %d, session %d", a, b)
	}
	toks, err := s.st.ListTokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	for _, x := range toks {
		if x.Hash == HashToken(tok) {
			id = x.ID
		}
	}
	if _, err := s.st.RevokeToken(context.Background(), strconv.FormatInt(id, 10), clock); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(time.Second) // docs/serve.md: within a second
	if a, b := status(plain, tok), status(c, ""); a != 401 || b == 200 {
		t.Errorf("a second after a revoke in the store: bearer %d, session %d; want 401 and not 200", a, b)
	}
}
