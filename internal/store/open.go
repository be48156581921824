package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// ErrNoStore is OpenExisting's answer when the URL names no store.
var ErrNoStore = errors.New("no pgaegis store there")

// Open opens (creating and migrating as needed) the store named by url:
//   - postgres://… or postgresql://…, or a libpq key=value string
//     ("host=db dbname=fleet"): PostgreSQL;
//   - sqlite://PATH, file:PATH, or a plain path: SQLite.
func Open(ctx context.Context, url string) (Store, error) { return openAt(ctx, url, 0) }

// openAt opens url migrated up to version upto (0: the latest), which
// only tests of migrations want.
func openAt(ctx context.Context, url string, upto int) (Store, error) {
	kind, target, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	if kind == "postgres" {
		return openPostgres(ctx, target, upto, false)
	}
	return openSQLite(ctx, target, upto)
}

// OpenExisting is Open for the commands that only read (report, diff,
// serve): a store that does not exist yet is refused with ErrNoStore
// rather than created, so a mistyped --store gives an error, not an
// empty store and an all-clear report. An existing store is migrated as
// Open does.
func OpenExisting(ctx context.Context, url string) (Store, error) {
	kind, target, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	if kind == "postgres" {
		return openPostgres(ctx, target, 0, true)
	}
	if _, err := os.Stat(target); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("store: %s: %w (fleet scan creates it)", target, ErrNoStore)
	}
	return openSQLite(ctx, target, 0)
}

// parseURL says which backend url names and what to hand it: the path
// for SQLite, the connection string for PostgreSQL.
func parseURL(url string) (kind, target string, err error) {
	u := strings.TrimSpace(url)
	switch {
	case u == "":
		return "", "", fmt.Errorf("store: empty URL (want a file path, sqlite://PATH or postgres://…)")
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		return "postgres", u, nil
	case strings.HasPrefix(u, "sqlite://"):
		u = strings.TrimPrefix(u, "sqlite://")
	case strings.HasPrefix(u, "file:"):
		u = strings.TrimPrefix(u, "file:")
		if strings.HasPrefix(u, "//") {
			u = strings.TrimPrefix(u, "//") // file:///abs → /abs
		}
	case isKeywordValue(u):
		return "postgres", u, nil
	case strings.Contains(u, "://"):
		scheme, _, _ := strings.Cut(u, "://")
		return "", "", fmt.Errorf("store: unknown URL scheme %q (want sqlite:// or postgres://)", scheme)
	}
	if u == "" {
		return "", "", fmt.Errorf("store: %q names no file", url)
	}
	// The SQLite driver reads everything after '?' as its own options.
	if strings.ContainsAny(u, "?#") {
		return "", "", fmt.Errorf("store: SQLite path %q: '?' and '#' are not allowed in the file name", u)
	}
	return "sqlite", u, nil
}

// isKeywordValue reports whether s reads as a libpq key=value string: it
// starts with a keyword followed by '='. A path ("./a=b.db", "/x=y")
// starts otherwise.
func isKeywordValue(s string) bool {
	k, _, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return false
	}
	for _, c := range strings.TrimSpace(k) {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
