// Package web is pgaegis serve: the fleet dashboard and /metrics over a
// store. Every page needs a token (bearer header or a login session);
// pages carry no script, a strict CSP, and forms with a CSRF token.
package web

import (
	"context"
	"errors"
	"log"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pgaegis/pgaegis/internal/store"
)

// Options configure a dashboard.
type Options struct {
	Store store.Store
	// TLS is set when the listener serves TLS: cookies are Secure and
	// HSTS is sent.
	TLS bool
	// CacheTTL is how long a fleet view (pages and /metrics) is reused;
	// default 10 s.
	CacheTTL time.Duration
	// RuleMetrics adds per-rule series to every /metrics scrape, as
	// ?detail=rules does for one.
	RuleMetrics bool
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Log receives errors (never a token); default discards.
	Log *log.Logger
}

// Server is a dashboard over one store.
type Server struct {
	st          store.Store
	tls         bool
	ttl         time.Duration
	ruleMetrics bool
	now         func() time.Time
	log         *log.Logger
	auth        *auth
	c           caches

	mmu    sync.Mutex
	mcache map[bool]*metricsCache // by per-rule detail

	fmu   sync.Mutex
	cur   *fleet
	build sync.Mutex
}

// New makes a dashboard.
func New(o Options) *Server {
	s := &Server{st: o.Store, tls: o.TLS, ttl: o.CacheTTL, ruleMetrics: o.RuleMetrics, now: o.Now, log: o.Log}
	if s.ttl <= 0 {
		s.ttl = 10 * time.Second
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = log.New(discard{}, "", 0)
	}
	s.auth = newAuth(s.st, s.now)
	s.mcache = map[bool]*metricsCache{}
	s.c.sums, s.c.certs = map[int64]*scanSummary{}, map[int64]*certInfo{}
	return s
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Warm builds the fleet view once (summaries of every server's latest
// scans), so the first visitor does not wait for it.
func (s *Server) Warm(ctx context.Context) error {
	_, err := s.fleet(ctx)
	return err
}

// Handler serves the dashboard.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS)))
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.loginPost)
	page := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.authed(h, false)) }
	page("POST /logout", s.logout)
	page("GET /{$}", s.fleetPage)
	page("GET /servers/{name}", s.serverPage)
	page("GET /servers/{name}/history", s.historyPage)
	page("GET /certificates", s.certsPage)
	page("GET /metrics", s.metrics)
	mux.Handle("GET /tokens", s.authed(s.tokensPage, true))
	mux.Handle("POST /tokens/{id}/revoke", s.authed(s.revokePost, true))
	return s.headers(mux)
}

// Routes lists every route but the login form and the stylesheet, for
// the tests that prove each needs a token.
func Routes() []string {
	return []string{"POST /logout", "GET /", "GET /servers/x", "GET /servers/x/history?rule=R&object=o", "GET /certificates",
		"GET /metrics", "GET /tokens", "POST /tokens/1/revoke"}
}

// authed requires a valid token (bearer or session), the operator role
// when op, and for state-changing requests the same origin and, with a
// session, its CSRF token.
func (s *Server) authed(h http.HandlerFunc, op bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.auth.identify(r)
		if err != nil && !errors.Is(err, errNoToken) {
			s.log.Printf("authentication: %v", err)
			http.Error(w, "store unavailable", http.StatusServiceUnavailable)
			return
		}
		if p == nil {
			s.refuse(w, r, errors.Is(err, errNoToken))
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !sameOrigin(r) {
				http.Error(w, "cross-site request refused", http.StatusForbidden)
				return
			}
			if !p.bearer && !csrfOK(r, p.sess.csrf) {
				http.Error(w, "missing or wrong CSRF token: reload the page", http.StatusForbidden)
				return
			}
		}
		if op && !p.operator() {
			http.Error(w, "this needs an operator token", http.StatusForbidden)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p)))
	})
}

// refuse answers an unauthenticated request: a browser's page request is
// sent to the login form, anything else (API, /metrics, a POST, a wrong
// bearer token) gets 401.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, badToken bool) {
	wantsHTML := strings.Contains(r.Header.Get("Accept"), "text/html")
	if r.Method == http.MethodGet && wantsHTML && !badToken && r.URL.Path != "/metrics" {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="pgaegis"`)
	http.Error(w, "authentication required: a token from 'pgaegis serve token create'", http.StatusUnauthorized)
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.renderLogin(w, r, "", http.StatusOK)
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, msg string, code int) {
	v := randomID()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: v, Path: "/login", HttpOnly: true, Secure: s.tls,
		SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	s.render(w, code, "login", map[string]any{"CSRF": v, "Next": safeNext(r.FormValue("next")), "Error": msg})
}

// safeNext keeps a post-login redirect on this site: a path, never
// "//evil" or a URL.
func safeNext(n string) string {
	if !strings.HasPrefix(n, "/") || strings.HasPrefix(n, "//") || strings.HasPrefix(n, "/\\") || strings.ContainsAny(n, "\r\n") {
		return "/"
	}
	return n
}

func (s *Server) loginPost(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-site request refused", http.StatusForbidden)
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !csrfOK(r, c.Value) {
		http.Error(w, "missing or wrong CSRF token: reload the login page", http.StatusForbidden)
		return
	}
	if ok, wait := s.auth.limiter.allow(clientIP(r)); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		s.renderLogin(w, r, "Too many attempts: wait a little.", http.StatusTooManyRequests)
		return
	}
	sess, err := s.auth.login(r.Context(), r.PostFormValue("token"))
	if errors.Is(err, errNoToken) {
		s.renderLogin(w, r, "Unknown or revoked token.", http.StatusUnauthorized)
		return
	}
	if err != nil {
		s.log.Printf("login: %v", err)
		http.Error(w, "login failed", http.StatusServiceUnavailable)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sess.id, Path: "/", HttpOnly: true, Secure: s.tls,
		SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/login", MaxAge: -1})
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if p := who(r); p.sess != nil {
		s.auth.drop(p.sess.id)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.tls,
		SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
