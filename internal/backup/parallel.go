package backup

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/backupset"
	"github.com/pgaegis/pgaegis/internal/conninfo"
)

// A parallel dump (Jobs > 1) is several custom-format pg_dumps of one
// database sharing one snapshot, each streamed into its own sealed file:
//
//   - part 0: the whole schema, the large objects and the data of every
//     table not given to another part (--exclude-table-data for those);
//   - parts 1..N-1: --data-only -t for the tables given to them, the
//     largest tables dealt out first, each to the least loaded part.
//
// pg_dump's own parallel mode (-j) needs the directory format (-Fd),
// which writes each table's data as a file of its own into a directory:
// plaintext on disk, exactly what pgaegis must never do, and not a
// stream that could pass through age on the way. Several -Fc streams
// from an exported snapshot give the same parallelism and stay streams.
//
// Restoring one: part 0 --section=pre-data, then every data part and
// part 0 --section=data (in any order, concurrently), then part 0
// --section=post-data.

// splitMin is the size below which a table's data stays in part 0: a
// data part for a few pages costs more in pg_dump start-up than it saves.
var splitMin int64 = 1 << 20

// packTables deals tables of at least splitMin bytes to jobs parts,
// largest first onto the least loaded (part 0 starts loaded with every
// smaller table). It returns the tables of each data part 1..k (only
// parts that got any), in the order given out.
func packTables(cat []catalogTable, jobs int) [][]catalogTable {
	if jobs < 2 {
		return nil
	}
	var big []catalogTable
	load := make([]int64, jobs)
	for _, t := range cat {
		if t.bytes >= splitMin {
			big = append(big, t)
		} else {
			load[0] += t.bytes
		}
	}
	sort.SliceStable(big, func(i, j int) bool { return big[i].bytes > big[j].bytes })
	parts := make([][]catalogTable, jobs)
	for _, t := range big {
		least := 0
		for p := 1; p < jobs; p++ {
			// Ties go to a data part: part 0 has the schema to dump too.
			if load[p] < load[least] || load[p] == load[least] && least == 0 {
				least = p
			}
		}
		load[least] += t.bytes
		parts[least] = append(parts[least], t)
	}
	var out [][]catalogTable
	for _, p := range parts[1:] {
		if len(p) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// tablePattern is a pg_dump -t pattern matching exactly schema.name:
// inside double quotes pg_dump takes every character literally (its
// wildcards * and ?, the dot, regular expression characters, upper case)
// and "" stands for one double quote (processSQLNamePattern).
func tablePattern(schema, name string) string {
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	return q(schema) + "." + q(name)
}

// dumpParallel dumps db as Jobs parts from one exported snapshot, which
// the transaction here holds until every part has finished.
func (r *run) dumpParallel(ctx context.Context, db string) (*backupset.Database, error) {
	c, err := r.connect(ctx, db)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	tx, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, &Fault{Problem: fmt.Sprintf("starting the snapshot transaction in %q: %s", db, conninfo.Redact(err.Error(), r.secrets...)), Err: err}
	}
	defer tx.Rollback(context.Background())
	var snap string
	if err := tx.QueryRow(ctx, "select pg_export_snapshot()").Scan(&snap); err != nil {
		return nil, &Fault{Problem: fmt.Sprintf("exporting a snapshot in %q: %s", db, conninfo.Redact(err.Error(), r.secrets...)), Err: err}
	}
	// The catalog read in the snapshot is the one every part dumps.
	cat, err := readCatalog(ctx, tx)
	if err != nil {
		return nil, &Fault{Problem: fmt.Sprintf("reading the tables of %q: %s", db, conninfo.Redact(err.Error(), r.secrets...)), Err: err}
	}
	dataParts := packTables(cat, r.o.Jobs)

	args := make([][]string, 1+len(dataParts))
	args[0] = []string{"--snapshot=" + snap}
	for i, tables := range dataParts {
		a := []string{"--snapshot=" + snap, "--data-only", "--strict-names"}
		for _, t := range tables {
			p := tablePattern(t.schema, t.name)
			args[0] = append(args[0], "--exclude-table-data="+p)
			a = append(a, "--table="+p)
		}
		args[i+1] = a
	}

	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]*partResult, len(args))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for i, a := range args {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := r.dumpPart(pctx, db, i, a)
			if err != nil {
				mu.Lock()
				// The first failure is the cause; the others were stopped for it.
				if first == nil {
					first = err
				}
				mu.Unlock()
				cancel()
				return
			}
			results[i] = p
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, &Fault{Problem: fmt.Sprintf("ending the snapshot transaction in %q: %s", db, conninfo.Redact(err.Error(), r.secrets...)), Err: err}
	}
	return assemble(db, cat, results), nil
}
