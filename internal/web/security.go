package web

import (
	"crypto/subtle"
	"net/http"
	"net/url"
)

// csp allows nothing but this origin's stylesheet and forms: the
// dashboard has no script at all, so an injected one cannot run.
const csp = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// headers sets the security headers on every response.
func (s *Server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		// same-origin, not no-referrer: under no-referrer a browser sends
		// "Origin: null" on its own forms, and the origin check refused them.
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-store") // pages describe weaknesses: no copies in shared caches
		if s.tls {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		// Forms here are a token and a CSRF field: nothing needs more.
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		next.ServeHTTP(w, r)
	})
}

// sameOrigin refuses a state-changing request a browser sent from
// another site: Sec-Fetch-Site when the browser sends it, else Origin.
// A client that sends neither (curl) is not a browser being abused; the
// CSRF token (for cookie sessions) still applies.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin":
		return true // the browser's own word, which a page cannot forge
	case "":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// csrfOK checks a form's csrf field against the session's token.
func csrfOK(r *http.Request, want string) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
