package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pgaegis/pgaegis/internal/store"
)

const (
	sessionCookie = "pgaegis_session"
	loginCookie   = "pgaegis_login" // the login form's CSRF value, before there is a session
	// recheck is how long a token's lookup is trusted: a token revoked by
	// the CLI (in the store, not through this process)
	// stops working within this time, also for sessions made with it. One
	// indexed lookup a second per token costs nothing.
	recheck = time.Second
	// sessionLife is a session's absolute lifetime.
	sessionLife = 12 * time.Hour
	maxSessions = 10000
)

// principal is who a request comes from.
type principal struct {
	tokenID int64
	name    string
	role    string
	bearer  bool     // came with an Authorization header (no cookie, no CSRF)
	sess    *session // nil for bearer requests
}

func (p *principal) operator() bool { return p.role == store.RoleOperator }

type session struct {
	id, csrf  string
	tokenHash string
	tokenID   int64
	name      string
	role      string
	created   time.Time
	checked   time.Time
}

type ctxKey struct{}

func who(r *http.Request) *principal {
	p, _ := r.Context().Value(ctxKey{}).(*principal)
	return p
}

// auth holds sessions, the token lookup cache and the login limiter.
type auth struct {
	st  store.Store
	now func() time.Time

	mu       sync.Mutex
	sessions map[string]*session
	tokens   map[string]cachedToken // by hash
	limiter  *limiter
}

type cachedToken struct {
	t  *store.Token
	at time.Time
}

func newAuth(st store.Store, now func() time.Time) *auth {
	return &auth{st: st, now: now, sessions: map[string]*session{}, tokens: map[string]cachedToken{},
		limiter: newLimiter(now, 5, 12*time.Second)}
}

var errNoToken = errors.New("unknown or revoked token")

// lookup finds a live token by its hash, trusting a lookup for recheck.
func (a *auth) lookup(ctx context.Context, hash string) (*store.Token, error) {
	now := a.now()
	a.mu.Lock()
	c, ok := a.tokens[hash]
	a.mu.Unlock()
	if ok && now.Sub(c.at) < recheck {
		return c.t, nil
	}
	t, err := a.st.LookupToken(ctx, hash, now)
	if errors.Is(err, store.ErrNotFound) {
		a.mu.Lock()
		delete(a.tokens, hash)
		a.mu.Unlock()
		return nil, errNoToken
	}
	if err != nil {
		return nil, err
	}
	// The store found it by hash; compare again in constant time so no
	// code path here ever branches early on a token's bytes.
	if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(hash)) != 1 {
		return nil, errNoToken
	}
	a.mu.Lock()
	if len(a.tokens) > maxSessions {
		a.tokens = map[string]cachedToken{}
	}
	a.tokens[hash] = cachedToken{t, now}
	a.mu.Unlock()
	return t, nil
}

// identify reads the request's credentials: a bearer token, else a
// session cookie. A wrong Authorization header is an error even when a
// cookie is present: a client that sends a token means that token.
func (a *auth) identify(r *http.Request) (*principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return nil, errNoToken
		}
		t, err := a.lookup(r.Context(), HashToken(tok))
		if err != nil {
			return nil, err
		}
		return &principal{tokenID: t.ID, name: t.Name, role: t.Role, bearer: true}, nil
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	now := a.now()
	a.mu.Lock()
	s := a.sessions[c.Value]
	var checked time.Time
	if s != nil {
		checked = s.checked
	}
	a.mu.Unlock()
	if s == nil || now.Sub(s.created) > sessionLife {
		a.drop(c.Value)
		return nil, nil
	}
	if now.Sub(checked) >= recheck {
		if _, err := a.lookup(r.Context(), s.tokenHash); err != nil {
			if errors.Is(err, errNoToken) {
				a.drop(s.id) // the token was revoked: so is its session
				return nil, nil
			}
			return nil, err
		}
		a.mu.Lock()
		s.checked = now
		a.mu.Unlock()
	}
	return &principal{tokenID: s.tokenID, name: s.name, role: s.role, sess: s}, nil
}

func (a *auth) drop(id string) {
	a.mu.Lock()
	delete(a.sessions, id)
	a.mu.Unlock()
}

// login makes a new session for a token (a fresh id: no session
// fixation).
func (a *auth) login(ctx context.Context, token string) (*session, error) {
	t, err := a.lookup(ctx, HashToken(token))
	if err != nil {
		return nil, err
	}
	now := a.now()
	s := &session{id: randomID(), csrf: randomID(), tokenHash: t.Hash, tokenID: t.ID, name: t.Name, role: t.Role, created: now, checked: now}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.sessions) >= maxSessions {
		for id, old := range a.sessions {
			if now.Sub(old.created) > sessionLife {
				delete(a.sessions, id)
			}
		}
		if len(a.sessions) >= maxSessions {
			return nil, errors.New("too many sessions")
		}
	}
	a.sessions[s.id] = s
	return s, nil
}

// clientIP is the address the login limiter counts by: the peer, never a
// forwarded header (which the client writes).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limiter is a token bucket per client address: burst attempts at once,
// then one every refill.
type limiter struct {
	now    func() time.Time
	burst  float64
	refill time.Duration
	mu     sync.Mutex
	b      map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(now func() time.Time, burst int, refill time.Duration) *limiter {
	return &limiter{now: now, burst: float64(burst), refill: refill, b: map[string]*bucket{}}
}

// allow takes one attempt for key; when none is left it says how long
// until the next.
func (l *limiter) allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.b) > 100000 {
		l.b = map[string]*bucket{} // a flood of addresses: start over rather than grow
	}
	b := l.b[key]
	if b == nil {
		b = &bucket{tokens: l.burst, at: now}
		l.b[key] = b
	}
	b.tokens = min(l.burst, b.tokens+float64(now.Sub(b.at))/float64(l.refill))
	b.at = now
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) * float64(l.refill))
	}
	b.tokens--
	return true, 0
}
