package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// cleanRule is one rule of a scan's clean set with every distinct title
// its findings carried.
type cleanRule struct {
	rule   string
	titles []string
}

// cleanSetBuilder collects a reached scan's findings, in any order, and
// gives the rules it decided and found nothing but pass for.
type cleanSetBuilder struct {
	bad    map[string]bool
	titles map[string]map[string]bool
}

func newCleanSet() *cleanSetBuilder {
	return &cleanSetBuilder{bad: map[string]bool{}, titles: map[string]map[string]bool{}}
}

func (b *cleanSetBuilder) add(rule, status, title string) {
	if status != "pass" {
		b.bad[rule] = true
	}
	if b.titles[rule] == nil {
		b.titles[rule] = map[string]bool{}
	}
	b.titles[rule][title] = true
}

// set is the clean set sorted by rule (bytes), titles sorted and
// distinct.
func (b *cleanSetBuilder) set() []cleanRule {
	var out []cleanRule
	for r, ts := range b.titles {
		if b.bad[r] {
			continue
		}
		cr := cleanRule{rule: r}
		for t := range ts {
			cr.titles = append(cr.titles, t)
		}
		slices.Sort(cr.titles)
		out = append(out, cr)
	}
	slices.SortFunc(out, func(a, b cleanRule) int { return strings.Compare(a.rule, b.rule) })
	return out
}

// cleanDigest names a clean set by its content: length-prefixed, so that
// no two sets share an encoding.
func cleanDigest(set []cleanRule) string {
	h := sha256.New()
	put := func(s string) {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	for _, r := range set {
		put(r.rule)
		h.Write([]byte(strconv.Itoa(len(r.titles))))
		h.Write([]byte{';'})
		for _, t := range r.titles {
			put(t)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// putCleanSet returns the id of the set, writing it if no scan had it
// yet. Two writers of one new set (PostgreSQL): the second's INSERT waits
// for the first and then inserts nothing, and the SELECT sees its row.
func putCleanSet(ctx context.Context, tx *sql.Tx, d *dialect, set []cleanRule) (int64, error) {
	dg := cleanDigest(set)
	var id int64
	err := tx.QueryRowContext(ctx, d.bind(`INSERT INTO clean_sets (digest) VALUES (?) ON CONFLICT (digest) DO NOTHING RETURNING id`), dg).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		if err := tx.QueryRowContext(ctx, d.bind(`SELECT id FROM clean_sets WHERE digest = ?`), dg).Scan(&id); err != nil {
			return 0, fmt.Errorf("store: clean set: %w", err)
		}
		return id, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: clean set: %w", err)
	}
	var args []any
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		q := `INSERT INTO clean_set_rules (set_id, rule, title) VALUES ` + strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", len(args)/3), ", ")
		_, err := tx.ExecContext(ctx, d.bind(q), args...)
		args = args[:0]
		return err
	}
	for _, r := range set {
		for _, t := range r.titles {
			args = append(args, id, r.rule, t)
			if len(args) >= 3*200 {
				if err := flush(); err != nil {
					return 0, fmt.Errorf("store: clean set: %w", err)
				}
			}
		}
	}
	if err := flush(); err != nil {
		return 0, fmt.Errorf("store: clean set: %w", err)
	}
	return id, nil
}

// backfillCleanSets gives every reached scan written before version 4
// its clean set, from its finding rows. It runs inside the migration's
// transaction.
func backfillCleanSets(ctx context.Context, tx *sql.Tx, d *dialect) error {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM scans WHERE status = 'ok' AND clean_set IS NULL ORDER BY id`)
	if err != nil {
		return err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		rows, err := tx.QueryContext(ctx, d.bind(`SELECT rule, status, title FROM findings WHERE scan_id = ?`), id)
		if err != nil {
			return err
		}
		b := newCleanSet()
		for rows.Next() {
			var rule, status, title string
			if err := rows.Scan(&rule, &status, &title); err != nil {
				rows.Close()
				return err
			}
			b.add(rule, status, title)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		sid, err := putCleanSet(ctx, tx, d, b.set())
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, d.bind(`UPDATE scans SET clean_set = ? WHERE id = ?`), sid, id); err != nil {
			return err
		}
	}
	return nil
}
