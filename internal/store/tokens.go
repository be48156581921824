package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Token roles: read-only sees everything the dashboard shows; operator
// may also change what the dashboard manages (revoke tokens).
const (
	RoleReadOnly = "read-only"
	RoleOperator = "operator"
)

// ValidRole reports whether r is a token role.
func ValidRole(r string) bool { return r == RoleReadOnly || r == RoleOperator }

// ErrTokenName is returned by CreateToken for a name already taken.
var ErrTokenName = errors.New("a token of that name exists")

// Token is a dashboard or API token as stored: its hash, never the token.
type Token struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Hash      string    `json:"-"` // hex SHA-256 of the token
	CreatedAt time.Time `json:"created_at"`
	LastUsed  time.Time `json:"last_used,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// Tokens keeps the tokens `pgaegis serve` accepts.
type Tokens interface {
	// CreateToken records a token by its hash.
	CreateToken(ctx context.Context, name, role, hash string, at time.Time) (*Token, error)
	// LookupToken finds a token that is not revoked by its hash and, when
	// its last use is older than a minute, records now as its last use
	// (one write a minute per token, not one per request).
	LookupToken(ctx context.Context, hash string, now time.Time) (*Token, error)
	// ListTokens lists every token, revoked ones too, by id.
	ListTokens(ctx context.Context) ([]Token, error)
	// RevokeToken revokes the token with this id or name; revoking a
	// revoked token is ErrNotFound.
	RevokeToken(ctx context.Context, idOrName string, at time.Time) (*Token, error)
}

const tokenCols = `id, name, role, hash, created_at, last_used_at, revoked_at`

func scanToken(row interface{ Scan(...any) error }) (*Token, error) {
	var t Token
	var created, used, revoked dbTime
	if err := row.Scan(&t.ID, &t.Name, &t.Role, &t.Hash, &created, &used, &revoked); err != nil {
		return nil, err
	}
	t.CreatedAt, t.LastUsed, t.RevokedAt = created.t, used.t, revoked.t
	return &t, nil
}

func (c *core) CreateToken(ctx context.Context, name, role, hash string, at time.Time) (*Token, error) {
	if !ValidRole(role) {
		return nil, fmt.Errorf("store: token role %q (want %s or %s)", role, RoleReadOnly, RoleOperator)
	}
	if name == "" || len(hash) != 64 {
		return nil, fmt.Errorf("store: a token needs a name and a SHA-256 hash")
	}
	if _, err := strconv.ParseInt(name, 10, 64); err == nil {
		// RevokeToken takes an id or a name: a name of digits would be both.
		return nil, fmt.Errorf("store: token name %q: a name may not be a number", name)
	}
	var id int64
	err := c.db.QueryRowContext(ctx, c.d.bind(`INSERT INTO tokens (name, role, hash, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO NOTHING RETURNING id`), name, role, hash, c.d.ts(at)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: token %q: %w", name, ErrTokenName)
	}
	if err != nil {
		return nil, fmt.Errorf("store: create token: %w", err)
	}
	return &Token{ID: id, Name: name, Role: role, Hash: hash, CreatedAt: at.UTC()}, nil
}

func (c *core) LookupToken(ctx context.Context, hash string, now time.Time) (*Token, error) {
	t, err := scanToken(c.db.QueryRowContext(ctx, c.d.bind(`SELECT `+tokenCols+` FROM tokens WHERE hash = ? AND revoked_at IS NULL`), hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: token: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: token: %w", err)
	}
	if now.Sub(t.LastUsed) >= time.Minute {
		if _, err := c.db.ExecContext(ctx, c.d.bind(`UPDATE tokens SET last_used_at = ? WHERE id = ?`), c.d.ts(now), t.ID); err != nil {
			return nil, fmt.Errorf("store: token last use: %w", err)
		}
		t.LastUsed = now.UTC()
	}
	return t, nil
}

func (c *core) ListTokens(ctx context.Context) ([]Token, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT `+tokenCols+` FROM tokens ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *t)
	}
	return out, rows.Err()
}

func (c *core) RevokeToken(ctx context.Context, idOrName string, at time.Time) (*Token, error) {
	q := `UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL RETURNING ` + tokenCols
	var key any = idOrName
	if id, err := strconv.ParseInt(strings.TrimSpace(idOrName), 10, 64); err == nil {
		q, key = `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING `+tokenCols, id
	}
	t, err := scanToken(c.db.QueryRowContext(ctx, c.d.bind(q), c.d.ts(at), key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: token %q (or it is revoked already): %w", idOrName, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: revoke token: %w", err)
	}
	return t, nil
}
