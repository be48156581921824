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

// readSensitiveColumns decides on names in Go, where it is cheap: the
// server lists the distinct column names and types of user tables (a few
// thousand, however many tables share them), and only the columns whose
// name or type matched are read in full. A case-insensitive regex of a
// hundred alternatives over every column took seconds per 20k tables.
// Partitions are left out (their parent is where readers look), and so
// are tables that belong to an extension.
func readSensitiveColumns(ctx context.Context, tx pgx.Tx, d *snapshot.Database) error {
	const from = `FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace `
	const where = `WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'm', 'f') AND NOT c.relispartition AND ` + userSchemas
	const userColumns = from + where
	var names []string
	var types []uint32
	rows, err := tx.Query(ctx, `SELECT DISTINCT a.attname::text, NULL::oid `+userColumns+`
		UNION ALL SELECT t.typname::text, t.oid FROM pg_type t WHERE t.oid IN (SELECT DISTINCT a.atttypid `+userColumns+`)`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name string
		var typ *uint32
		if err := rows.Scan(&name, &typ); err != nil {
			rows.Close()
			return err
		}
		if _, ok := sensitive.ClassifyName(name); !ok {
			continue
		}
		if typ != nil {
			types = append(types, *typ)
		} else {
			names = append(names, name)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(names) == 0 && len(types) == 0 {
		return nil
	}
	rows, err = tx.Query(ctx, `SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), t.typname,
		a.atttypid = 'bytea'::regtype OR t.typbasetype = 'bytea'::regtype
		`+from+`JOIN pg_type t ON t.oid = a.atttypid `+where+` AND (a.attname = ANY($1::text[]) OR a.atttypid = ANY($2::oid[]))
		AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
		AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_namespace'::regclass AND e.objid = n.oid AND e.deptype = 'e')
		ORDER BY 1, 2, a.attnum`, names, types)
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
