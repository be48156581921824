package collect

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/sensitive"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// Sampling bounds: rows per column and columns per database, so that a
// database with thousands of credential-looking columns stays cheap.
const (
	sampleRows    = 200
	sampleColumns = 500
)

// readSensitive finds the columns of user tables whose name or type looks
// like a credential or personal data, and with Options.SampleData
// classifies a bounded sample of credential columns' values. Values are
// classified as they arrive and dropped: only counts reach the snapshot.
func readSensitive(ctx context.Context, se *session, d *snapshot.Database, warns, errs *[]string) {
	start := time.Now()
	err := se.optional(ctx, func(tx pgx.Tx) error { return readSensitiveColumns(ctx, tx, d) })
	se.o.trace("database %q: sensitive columns in %s", d.Name, time.Since(start).Round(time.Millisecond))
	if err != nil {
		msg := fmt.Sprintf("database %q: reading sensitive columns failed: %s", d.Name, errString(err))
		if isPermission(err) {
			*warns = append(*warns, msg)
		} else {
			*errs = append(*errs, msg)
		}
		return
	}
	d.SensitiveRead = true
	if !se.o.SampleData {
		return
	}
	sampled := 0
	for i := range d.SensitiveColumns {
		c := &d.SensitiveColumns[i]
		if c.Kind != sensitive.Credential {
			continue
		}
		if sampled == sampleColumns {
			c.SampleError = fmt.Sprintf("not sampled: more than %d credential columns in this database", sampleColumns)
			continue
		}
		sampled++
		var counts sensitive.Counts
		err := se.optional(ctx, func(tx pgx.Tx) error { return sampleColumn(ctx, tx, c, &counts) })
		if err != nil {
			if st := se.stalled(); st != nil {
				c.SampleError = st.Error()
				return
			}
			// The server's message names the table, never a value.
			c.SampleError = errString(err)
			continue
		}
		c.Sample = &snapshot.ValueSample{Rows: counts.Rows, Empty: counts.Empty, Hashed: counts.Hashed,
			Encrypted: counts.Encrypted, Plain: counts.Plain, Formats: counts.Formats}
	}
}

// readSensitiveColumns filters pg_attribute with the name pattern on the
// server (a handful of rows out of millions of columns), then decides each
// in Go; type names are matched once, in pg_type, not per column. Partitions are left out (their parent is where readers look), and
// so are tables that belong to an extension.
func readSensitiveColumns(ctx context.Context, tx pgx.Tx, d *snapshot.Database) error {
	rows, err := tx.Query(ctx, `SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), t.typname,
		a.atttypid = 'bytea'::regtype OR t.typbasetype = 'bytea'::regtype
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_type t ON t.oid = a.atttypid
		WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'm', 'f') AND NOT c.relispartition
		AND (a.attname ~* $1 OR a.atttypid IN (SELECT oid FROM pg_type WHERE typname ~* $1)) AND `+userSchemas+`
		AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
		AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_namespace'::regclass AND e.objid = n.oid AND e.deptype = 'e')
		ORDER BY 1, 2, a.attnum`, sensitive.SQLPattern())
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var c snapshot.SensitiveColumn
		var typname string
		var binary bool
		if err := rows.Scan(&c.Schema, &c.Table, &c.Column, &c.Type, &typname, &binary); err != nil {
			return err
		}
		m, ok := sensitive.ClassifyName(c.Column)
		if !ok {
			if m, ok = sensitive.ClassifyName(typname); !ok {
				continue
			}
		}
		c.Kind, c.Label = m.Kind, m.Label
		if binary {
			c.Type = "bytea"
		}
		d.SensitiveColumns = append(d.SensitiveColumns, c)
	}
	return rows.Err()
}

// sampleColumn reads up to sampleRows non-null values of one column, in
// the session's read-only transaction (statement_timeout applies), and
// counts their verdicts. bytea is read raw; anything else as text.
func sampleColumn(ctx context.Context, tx pgx.Tx, c *snapshot.SensitiveColumn, counts *sensitive.Counts) error {
	col := pgx.Identifier{c.Column}.Sanitize()
	expr := col + "::text"
	if c.Type == "bytea" {
		expr = col + "::bytea"
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s IS NOT NULL LIMIT %d", expr, pgx.Identifier{c.Schema, c.Table}.Sanitize(), col, sampleRows)
	rows, err := tx.Query(ctx, q, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		// RawValues: the driver's buffer, classified in place and not
		// copied anywhere.
		raw := rows.RawValues()
		if len(raw) != 1 {
			return fmt.Errorf("sample of %s.%s.%s: unexpected row shape", c.Schema, c.Table, c.Column)
		}
		counts.Add(sensitive.ClassifyValue(raw[0]))
	}
	return rows.Err()
}
