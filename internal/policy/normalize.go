package policy

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/quote"
)

// normalizeName is the throwaway policy Normalize creates (and rolls back).
const normalizeName = "pgaegis normalize"

// Normalize lets the server say whether a policy expression in the file
// differs from the live one only in form (casts, parentheses, spacing):
// for each policy of database db whose text differs, it creates the
// file's version under a throwaway name in a transaction that is rolled
// back, reads pg_get_expr's rendering, and where that equals the live
// expression puts the live text into desired (which it changes in
// place), so the plan does not alter the policy again and again.
// connect opens a connection to a database, only where a policy needs
// the question, as a role that owns the tables (CREATE POLICY takes the
// table's lock: lock_timeout is short, and a table that cannot be locked
// keeps its text, which only costs an ALTER POLICY).
func Normalize(ctx context.Context, connect func(ctx context.Context, db string) (*pgx.Conn, error), desired *File, live *Live) error {
	for _, db := range sortedKeys(desired.Databases) {
		if err := normalizeIn(ctx, connect, db, desired, live); err != nil {
			return err
		}
	}
	return nil
}

func normalizeIn(ctx context.Context, connect func(ctx context.Context, db string) (*pgx.Conn, error), db string, desired *File, live *Live) error {
	wd, ld := desired.Databases[db], live.File.Databases[db]
	if wd == nil || ld == nil {
		return nil
	}
	var conn *pgx.Conn
	var tx pgx.Tx
	defer func() {
		if tx != nil {
			_ = tx.Rollback(ctx)
		}
		if conn != nil {
			conn.Close(ctx)
		}
	}()
	for _, sn := range sortedKeys(wd.Schemas) {
		ws, ls := wd.Schemas[sn], ld.Schemas[sn]
		if ws == nil || ls == nil {
			continue
		}
		for _, tn := range sortedKeys(ws.RLS) {
			wr, lr := ws.RLS[tn], ls.RLS[tn]
			if wr == nil || lr == nil {
				continue
			}
			for _, pn := range sortedKeys(wr.Policies) {
				wp, lp := wr.Policies[pn], lr.Policies[pn]
				if wp == nil || lp == nil || SameExpr(wp.Using, lp.Using) && SameExpr(wp.Check, lp.Check) {
					continue
				}
				if tx == nil {
					var err error
					if conn, err = connect(ctx, db); err != nil {
						return fmt.Errorf("normalize policies in %s: %w", db, err)
					}
					if tx, err = conn.Begin(ctx); err != nil {
						return fmt.Errorf("normalize policies in %s: %w", db, err)
					}
					if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '2s'"); err != nil {
						return fmt.Errorf("normalize policies in %s: %w", db, err)
					}
					// CREATE POLICY fires event triggers: a superuser asking
					// must not run their code. In replica mode ordinary
					// event triggers do not fire (only a superuser may set
					// it; anyone else runs them with their own rights).
					if _, err := tx.Exec(ctx, "SAVEPOINT pgaegis_replica"); err != nil {
						return fmt.Errorf("normalize policies in %s: %w", db, err)
					}
					if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
						if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT pgaegis_replica"); err != nil {
							return fmt.Errorf("normalize policies in %s: %w", db, err)
						}
					}
				}
				using, check, ok := serverForm(ctx, tx, sn, tn, wp)
				if !ok {
					continue
				}
				if using == squeeze(lp.Using) || SameExpr(using, lp.Using) {
					wp.Using = lp.Using
				}
				if check == squeeze(lp.Check) || SameExpr(check, lp.Check) {
					wp.Check = lp.Check
				}
			}
		}
	}
	return nil
}

// serverForm creates p under the throwaway name inside a savepoint and
// returns the server's rendering of its expressions.
func serverForm(ctx context.Context, tx pgx.Tx, schema, table string, p *RowPolicy) (using, check string, ok bool) {
	if _, err := tx.Exec(ctx, "SAVEPOINT pgaegis_normalize"); err != nil {
		return "", "", false
	}
	defer func() { _, _ = tx.Exec(ctx, "ROLLBACK TO SAVEPOINT pgaegis_normalize") }()
	tmp := *p
	tmp.Roles = nil
	tbl := quote.Qualified(schema, table)
	if _, err := tx.Exec(ctx, createPolicy(quote.Ident(normalizeName), tbl, &tmp)); err != nil {
		return "", "", false
	}
	var u, c *string
	// By names, not $1::regclass: a regclass literal cannot hold the
	// U&"" form Ident gives a name with a newline.
	err := tx.QueryRow(ctx, `SELECT pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
		FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND p.polname = $3`, schema, table, normalizeName).Scan(&u, &c)
	if err != nil {
		return "", "", false
	}
	if u != nil {
		using = *u
	}
	if c != nil {
		check = *c
	}
	return using, check, true
}
