package collect

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgaegis/pgaegis/internal/acl"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

type roleNamesKey struct{}

// withRoleNames lets per-database reads name owners from OIDs without a
// server-side lookup per row.
func withRoleNames(ctx context.Context, roles []snapshot.Role) context.Context {
	m := make(map[uint32]string, len(roles))
	for _, r := range roles {
		m[r.OID] = r.Name
	}
	return context.WithValue(ctx, roleNamesKey{}, m)
}

type dbStateKey struct{}

// dbState is what the reads of one database share (one goroutine's: an
// acl.Interner is not safe for concurrent use).
type dbState struct {
	in *acl.Interner
	// tenants: the tenant-looking columns of each relation (by index in
	// Relations), found by readRelations' pass over pg_attribute for
	// readRLS; tenantsRead says that pass ran.
	tenants     map[int][]string
	tenantsRead bool
}

// withDBState gives a database's reads their shared state; the interner
// starts with the role names (withRoleNames), which ACLs then share.
func withDBState(ctx context.Context) context.Context {
	m, _ := ctx.Value(roleNamesKey{}).(map[uint32]string)
	names := make([]string, 0, len(m))
	for _, n := range m {
		names = append(names, n)
	}
	return context.WithValue(ctx, dbStateKey{}, &dbState{in: acl.NewInterner(names...)})
}

func dbStateFrom(ctx context.Context) *dbState {
	if st, ok := ctx.Value(dbStateKey{}).(*dbState); ok {
		return st
	}
	return &dbState{} // nothing shared: a nil interner copies nothing
}

// internerFrom is the interner of ctx, or nil (nothing shared).
func internerFrom(ctx context.Context) *acl.Interner { return dbStateFrom(ctx).in }

func roleNamesFrom(ctx context.Context) func(uint32) string {
	m, _ := ctx.Value(roleNamesKey{}).(map[uint32]string)
	return func(oid uint32) string {
		if n, ok := m[oid]; ok {
			return n
		}
		return fmt.Sprintf("(role %d)", oid)
	}
}

// Catalog reads beyond the basics: one query per catalog, filtered and
// aggregated on the server so that 100k tables cost one round trip and a
// few rows, not 100k rows.

// systemSchemas are excluded from "user object" questions.
const userSchemas = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'`

// DangerousFunctions are built-ins that reach files, large objects or
// other sessions; a grant on them to an ordinary role is an escalation.
var DangerousFunctions = []string{"pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "lo_import", "lo_export",
	"pg_ls_logdir", "pg_ls_waldir", "pg_ls_tmpdir", "pg_ls_archive_statusdir", "pg_reload_conf", "pg_rotate_logfile",
	"pg_terminate_backend", "pg_cancel_backend", "pg_promote", "pg_switch_wal", "pg_create_restore_point", "pg_file_write",
	"pg_file_rename", "pg_file_unlink", "pg_logdir_ls", "dblink_connect_u"}

// tenantColumns are names that mark a table as holding several tenants' rows.
var tenantColumns = []string{"tenant_id", "tenant", "org_id", "organization_id", "organisation_id", "customer_id", "account_id", "company_id", "client_id"}

type queryFn func(ctx context.Context, tx pgx.Tx, d *snapshot.Database, warns, errs *[]string) error

// readDatabaseCatalogs runs the per-database security catalog reads. A
// step refused for lack of privilege is a warning; one that breaks
// otherwise is an error (errs), so that rules do not pass on what was
// never read.
func readDatabaseCatalogs(ctx context.Context, se *session, d *snapshot.Database, warns, errs *[]string) {
	for _, step := range []struct {
		what string
		fn   queryFn
	}{
		{"relations", readRelations}, {"functions", readFunctions}, {"default privileges", readDefaultACLs},
		{"foreign servers", readForeignServers}, {"row-level security", readRLS}, {"views over RLS tables", readViewsOverRLS},
		{"routines", readRoutines}, {"large objects", readLargeObjects}, {"event triggers", readEventTriggers},
	} {
		start := time.Now()
		err := se.optional(ctx, func(tx pgx.Tx) error { return step.fn(ctx, tx, d, warns, errs) })
		se.o.trace("database %q: %s in %s", d.Name, step.what, time.Since(start).Round(time.Millisecond))
		if err != nil {
			msg := fmt.Sprintf("database %q: reading %s failed: %s", d.Name, step.what, errString(err))
			if isPermission(err) {
				*warns = append(*warns, msg)
			} else {
				*errs = append(*errs, msg)
			}
		}
		if se.stalled() != nil {
			return
		}
	}
}

// untrustedLang: the function's language runs its body as the server's
// OS user. A handler of a known untrusted language marked trusted
// (plpython3u, pltclu: they ignore the flag) still does; plperlu reads
// the flag and runs restricted, so it is not listed. Functions of
// extensions (pgcrypto's C functions) are vetted with the extension and
// are only collected when SECURITY DEFINER, as before.
const untrustedLang = `((NOT l.lanpltrusted AND l.lanname <> 'internal') OR l.lanname IN ('plpythonu', 'plpython2u', 'plpython3u', 'pltclu', 'plsh', 'plr', 'pljavau', 'plv8u'))`

func readFunctions(ctx context.Context, tx pgx.Tx, d *snapshot.Database, warns, errs *[]string) error {
	rows, err := tx.Query(ctx, `SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), pg_get_userbyid(p.proowner),
		l.lanname, p.prosecdef, coalesce(p.proconfig, '{}'), p.proacl::text[], coalesce(e.extname, ''),
		l.lanname <> 'c' AND l.lanname <> 'internal' AND p.prosrc ~* '\mexecute\M',
		l.lanname <> 'c' AND l.lanname <> 'internal' AND p.prosrc ~* 'execute\s[^;]*\|\|',
		`+untrustedLang+`
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
		LEFT JOIN pg_depend dep ON dep.classid = 'pg_proc'::regclass AND dep.objid = p.oid AND dep.deptype = 'e'
		LEFT JOIN pg_extension e ON e.oid = dep.refobjid
		WHERE p.prosecdef OR (p.proacl IS NOT NULL AND p.proname = ANY($1))
			OR (`+untrustedLang+` AND e.oid IS NULL AND `+userSchemas+`)`, DangerousFunctions)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var f snapshot.Function
		var a []string
		if err := rows.Scan(&f.Schema, &f.Name, &f.Args, &f.Owner, &f.Language, &f.SecDef, &f.Config, &a, &f.Extension, &f.DynamicSQL, &f.ConcatInExec, &f.Untrusted); err != nil {
			return err
		}
		f.ACL, f.ACLDefault = parseACL(internerFrom(ctx), errs, func() string { return "function " + f.Signature() }, a)
		d.Functions = append(d.Functions, f)
	}
	return rows.Err()
}

func readDefaultACLs(ctx context.Context, tx pgx.Tx, d *snapshot.Database, warns, errs *[]string) error {
	rows, err := tx.Query(ctx, `SELECT pg_get_userbyid(d.defaclrole), coalesce(n.nspname, ''), d.defaclobjtype::text, d.defaclacl::text[]
		FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var x snapshot.DefaultACL
		var a []string
		if err := rows.Scan(&x.Role, &x.Schema, &x.ObjType, &a); err != nil {
			return err
		}
		x.ACL, _ = parseACL(internerFrom(ctx), errs, func() string { return "default privileges of " + x.Role }, a)
		d.DefaultACLs = append(d.DefaultACLs, x)
	}
	return rows.Err()
}

func readForeignServers(ctx context.Context, tx pgx.Tx, d *snapshot.Database, warns, errs *[]string) error {
	rows, err := tx.Query(ctx, `SELECT s.srvname, w.fdwname, pg_get_userbyid(s.srvowner), s.srvacl::text[]
		FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw ORDER BY 1`)
	if err != nil {
		return err
	}
	idx := map[string]int{}
	for rows.Next() {
		var fs snapshot.ForeignServer
		var a []string
		if err := rows.Scan(&fs.Name, &fs.Wrapper, &fs.Owner, &a); err != nil {
			rows.Close()
			return err
		}
		fs.ACL, _ = parseACL(internerFrom(ctx), errs, func() string { return "foreign server " + fs.Name }, a)
		idx[fs.Name] = len(d.ForeignServers)
		d.ForeignServers = append(d.ForeignServers, fs)
	}
	rows.Close()
	if len(d.ForeignServers) == 0 {
		return nil
	}
	// Option names only: the values of user mappings are credentials.
	rows, err = tx.Query(ctx, `SELECT srvname, usename,
		coalesce((SELECT array_agg(split_part(o, '=', 1)) FROM unnest(umoptions) o), '{}'),
		coalesce((SELECT bool_or(o = 'password_required=false') FROM unnest(umoptions) o), false)
		FROM pg_user_mappings`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var srv string
		var m snapshot.UserMapping
		if err := rows.Scan(&srv, &m.User, &m.OptionNames, &m.PasswordOptional); err != nil {
			return err
		}
		if i, ok := idx[srv]; ok {
			d.ForeignServers[i].Mappings = append(d.ForeignServers[i].Mappings, m)
		}
	}
	return rows.Err()
}

func readRLS(ctx context.Context, tx pgx.Tx, d *snapshot.Database, _, _ *[]string) error {
	// Tables with RLS come from Relations, and their tenant-looking
	// columns from readRelations' pass over pg_attribute; without it
	// (that read failed), one pass here.
	st := dbStateFrom(ctx)
	tenant := map[string][]string{}
	if !st.tenantsRead {
		rows, err := tx.Query(ctx, `SELECT n.nspname, c.relname, array_agg(a.attname::text ORDER BY a.attnum)
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE a.attname = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND `+userSchemas+`
		GROUP BY 1, 2`, tenantColumns)
		if err != nil {
			return err
		}
		for rows.Next() {
			var schema, table string
			var cols []string
			if err := rows.Scan(&schema, &table, &cols); err != nil {
				rows.Close()
				return err
			}
			tenant[schema+"."+table] = cols
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	idx := map[string]int{}
	for i, r := range d.Relations {
		key := r.Schema + "." + r.Name
		cols := tenant[key]
		if st.tenantsRead {
			cols = st.tenants[i]
		}
		if (r.Kind != "r" && r.Kind != "p") || (!r.RLS && len(cols) == 0) {
			continue
		}
		idx[key] = len(d.RLSTables)
		d.RLSTables = append(d.RLSTables, snapshot.RLSTable{Schema: r.Schema, Name: r.Name, Owner: r.Owner, Enabled: r.RLS, Forced: r.ForceRLS, TenantColumns: cols})
	}
	rows, err := tx.Query(ctx, `SELECT n.nspname, c.relname, p.polname, p.polcmd::text, p.polpermissive,
		ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r) END FROM unnest(p.polroles) r),
		coalesce(pg_get_expr(p.polqual, p.polrelid), ''), coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
		FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace ORDER BY 1, 2, 3`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var schema, table string
		var p snapshot.Policy
		if err := rows.Scan(&schema, &table, &p.Name, &p.Command, &p.Permissive, &p.Roles, &p.Using, &p.WithCheck); err != nil {
			return err
		}
		if i, ok := idx[schema+"."+table]; ok {
			d.RLSTables[i].Policies = append(d.RLSTables[i].Policies, p)
		}
	}
	return rows.Err()
}

// summarizeRelations derives, from the relations already pulled, the grant
// summaries (to PUBLIC, with grant option) and owner counts.
func summarizeRelations(d *snapshot.Database) {
	type key struct {
		schema, grantee, priv string
		grantable             bool
	}
	agg := map[key]*snapshot.GrantSummary{}
	var order []key
	owners := map[string]int{}
	for _, r := range d.Relations {
		owners[r.Owner]++
		for _, it := range r.ACL {
			for _, g := range it.Grants {
				public := it.Grantee == "PUBLIC"
				grantOpt := g.GrantOption && it.Grantee != r.Owner
				if !public && !grantOpt {
					continue
				}
				k := key{r.Schema, it.Grantee, g.Privilege, g.GrantOption && !public}
				if s, ok := agg[k]; ok {
					s.Count++
					if r.Name < s.Example {
						s.Example = r.Name
					}
					continue
				}
				agg[k] = &snapshot.GrantSummary{Schema: r.Schema, Grantee: it.Grantee, Privilege: g.Privilege, Grantable: k.grantable, Count: 1, Example: r.Name}
				order = append(order, k)
			}
		}
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if a.schema != b.schema {
			return a.schema < b.schema
		}
		if a.grantee != b.grantee {
			return a.grantee < b.grantee
		}
		return a.priv < b.priv
	})
	for _, k := range order {
		s := *agg[k]
		if s.Grantee == "PUBLIC" {
			d.PublicGrants = append(d.PublicGrants, s)
		} else {
			d.GrantOptions = append(d.GrantOptions, s)
		}
	}
	names := make([]string, 0, len(owners))
	for n := range owners {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d.Owners = append(d.Owners, snapshot.OwnerCount{Owner: n, Count: owners[n]})
	}
}

func readViewsOverRLS(ctx context.Context, tx pgx.Tx, d *snapshot.Database, _, _ *[]string) error {
	rows, err := tx.Query(ctx, `SELECT DISTINCT vn.nspname, v.relname, pg_get_userbyid(v.relowner), tn.nspname || '.' || t.relname
		FROM pg_rewrite r JOIN pg_class v ON v.oid = r.ev_class JOIN pg_namespace vn ON vn.oid = v.relnamespace
		JOIN pg_depend dep ON dep.objid = r.oid AND dep.classid = 'pg_rewrite'::regclass
		JOIN pg_class t ON t.oid = dep.refobjid AND t.relrowsecurity JOIN pg_namespace tn ON tn.oid = t.relnamespace
		WHERE v.relkind IN ('v', 'm') AND v.oid <> t.oid
		AND NOT coalesce(v.reloptions @> ARRAY['security_invoker=true'] OR v.reloptions @> ARRAY['security_invoker=on'], false)
		ORDER BY 1, 2`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var v snapshot.ViewOverRLS
		if err := rows.Scan(&v.Schema, &v.Name, &v.Owner, &v.Table); err != nil {
			return err
		}
		d.ViewsOverRLS = append(d.ViewsOverRLS, v)
	}
	return rows.Err()
}

// readClusterCatalogs reads cluster-wide security state from the first
// session.
func readClusterCatalogs(ctx context.Context, se *session, s *snapshot.Snapshot) error {
	// An ACL we cannot read is an error, not an empty ACL: an empty one
	// would pass every "who may" rule.
	var aclErrs []string
	defer func() {
		for _, e := range aclErrs {
			s.AddError("catalog.acl", e)
		}
	}()
	steps := []struct {
		what string
		fn   func(pgx.Tx) error
	}{
		{"pg_parameter_acl", func(tx pgx.Tx) error {
			if s.MajorVersion() < 15 {
				return nil
			}
			rows, err := tx.Query(ctx, `SELECT parname, paracl::text[] FROM pg_parameter_acl WHERE paracl IS NOT NULL`)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var p snapshot.ParamACL
				var a []string
				if err := rows.Scan(&p.Name, &a); err != nil {
					return err
				}
				p.ACL, _ = parseACL(nil, &aclErrs, func() string { return "parameter " + p.Name }, a)
				s.ParamACLs = append(s.ParamACLs, p)
			}
			return rows.Err()
		}},
		{"catalog ACLs", func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `SELECT c.relname, pg_get_userbyid(c.relowner), c.relacl::text[] FROM pg_class c
				WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relname IN ('pg_authid', 'pg_shadow', 'pg_user_mapping', 'pg_statistic', 'pg_largeobject', 'pg_subscription')`)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var c snapshot.CatalogACL
				var a []string
				if err := rows.Scan(&c.Name, &c.Owner, &a); err != nil {
					return err
				}
				c.ACL, _ = parseACL(nil, &aclErrs, func() string { return "catalog " + c.Name }, a)
				s.CatalogACLs = append(s.CatalogACLs, c)
			}
			return rows.Err()
		}},
		{"replication", func(tx pgx.Tx) error {
			r := &snapshot.Replication{}
			rows, err := tx.Query(ctx, `SELECT coalesce(r.usename::text, ''), coalesce(host(r.client_addr), ''), coalesce(s.ssl, false)
				FROM pg_stat_replication r LEFT JOIN pg_stat_ssl s ON s.pid = r.pid`)
			if err != nil {
				return err
			}
			for rows.Next() {
				var w snapshot.WalSender
				if err := rows.Scan(&w.User, &w.Client, &w.SSL); err != nil {
					rows.Close()
					return err
				}
				r.Senders = append(r.Senders, w)
			}
			rows.Close()
			var lf, la pgtype.Timestamptz
			if err := tx.QueryRow(ctx, `SELECT coalesce(archived_count, 0), coalesce(failed_count, 0), last_failed_time, last_archived_time FROM pg_stat_archiver`).Scan(&r.ArchivedCount, &r.FailedCount, &lf, &la); err != nil {
				return err
			}
			r.LastFailed, r.LastArchived = finiteTime(lf), finiteTime(la)
			s.Replication = r
			return nil
		}},
		{"tablespaces", func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `SELECT spcname, pg_get_userbyid(spcowner), pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global')`)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var t snapshot.Tablespace
				if err := rows.Scan(&t.Name, &t.Owner, &t.Location); err != nil {
					return err
				}
				s.Tablespaces = append(s.Tablespaces, t)
			}
			return rows.Err()
		}},
		{"available extensions", func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `SELECT name, coalesce(default_version, '') FROM pg_available_extensions
				WHERE name IN ('pgcrypto', 'set_user', 'pgaudit', 'credcheck', 'passwordcheck', 'anon', 'sepgsql', 'pg_tde')`)
			if err != nil {
				return err
			}
			defer rows.Close()
			s.AvailableExtensions = map[string]string{}
			for rows.Next() {
				var n, v string
				if err := rows.Scan(&n, &v); err != nil {
					return err
				}
				s.AvailableExtensions[n] = v
			}
			return rows.Err()
		}},
	}
	for _, st := range steps {
		if err := se.optional(ctx, st.fn); err != nil {
			if stall := se.stalled(); stall != nil {
				return fmt.Errorf("reading %s: %v", st.what, stall)
			}
			msg := fmt.Sprintf("reading %s failed: %s", st.what, errString(err))
			if isPermission(err) {
				s.AddGap("catalog."+st.what, msg)
			} else {
				s.AddError("catalog."+st.what, msg)
			}
		}
	}
	return nil
}

// relationChunk is how many relations readRelations keeps per chunk (a
// variable for tests).
var relationChunk = 4096

// readRelations pulls every relation of user schemas with its ACL, RLS
// flags and column-level ACLs: two queries however many tables there are.
func readRelations(ctx context.Context, tx pgx.Tx, d *snapshot.Database, warns, errs *[]string) error {
	// Owners come as OIDs and ACLs as one text value: the cheapest form
	// for the server to produce and for us to read at 100k rows.
	names := roleNamesFrom(ctx)
	rows, err := tx.Query(ctx, `SELECT c.oid, n.nspname, c.relname, c.relkind::text, c.relowner, coalesce(c.relacl::text, ''),
		c.relacl IS NULL, c.relrowsecurity, c.relforcerowsecurity
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND `+userSchemas)
	if err != nil {
		return err
	}
	in := internerFrom(ctx)
	// In chunks: a growing slice of 100k relations would copy them over
	// and over (a good part of the read's CPU time).
	chunk := relationChunk
	var chunks [][]snapshot.Relation
	var oids []uint32
	for rows.Next() {
		var oid, owner uint32
		var r snapshot.Relation
		var a string
		// Schema and kind repeat on every row: read in place, kept once.
		var schema, kind pgtype.DriverBytes
		if err := rows.Scan(&oid, &schema, &r.Name, &kind, &owner, &a, &r.ACLDefault, &r.RLS, &r.ForceRLS); err != nil {
			rows.Close()
			return err
		}
		r.Schema, r.Kind = in.NameBytes(schema), in.NameBytes(kind)
		r.Owner = names(owner)
		if !r.ACLDefault {
			items, err := in.ParseArrayText(a)
			if err != nil {
				*errs = append(*errs, fmt.Sprintf("database %q: relation %s.%s: unreadable ACL: %v", d.Name, r.Schema, r.Name, err))
			}
			r.ACL = items
		}
		if len(chunks) == 0 || len(chunks[len(chunks)-1]) == chunk {
			chunks = append(chunks, make([]snapshot.Relation, 0, chunk))
		}
		chunks[len(chunks)-1] = append(chunks[len(chunks)-1], r)
		oids = append(oids, oid)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	// In OID order, sorted here: ORDER BY made the server sort 100k wide
	// rows, on disk past work_mem, for more than the rest of the query.
	perm := make([]int32, len(oids))
	for i := range perm {
		perm[i] = int32(i)
	}
	slices.SortFunc(perm, func(a, b int32) int { return cmp.Compare(oids[a], oids[b]) })
	idx := make(map[uint32]int, len(oids))
	d.Relations = slices.Grow(d.Relations, len(oids))
	for _, p := range perm {
		idx[oids[p]] = len(d.Relations)
		d.Relations = append(d.Relations, chunks[int(p)/chunk][int(p)%chunk])
	}
	// One pass over pg_attribute for the relations above (idx): column
	// ACLs, and the tenant-looking columns readRLS needs (a second scan of
	// pg_attribute costs as much as this one). No join on the server: the
	// catalogs' own columns are dropped here.
	rows, err = tx.Query(ctx, `SELECT attrelid, attname, attnum, attacl IS NULL, coalesce(attacl::text, '') FROM pg_attribute
		WHERE attnum > 0 AND NOT attisdropped AND (attacl IS NOT NULL OR attname = ANY($1))`, tenantColumns)
	if err != nil {
		return err
	}
	defer rows.Close()
	type tenantCol struct {
		num  int16
		name string
	}
	tenants := map[int][]tenantCol{}
	for rows.Next() {
		var oid uint32
		var num int16
		var name, a string
		var noACL bool
		if err := rows.Scan(&oid, &name, &num, &noACL, &a); err != nil {
			return err
		}
		i, ok := idx[oid]
		if !ok {
			continue
		}
		if slices.Contains(tenantColumns, name) && (d.Relations[i].Kind == "r" || d.Relations[i].Kind == "p") {
			tenants[i] = append(tenants[i], tenantCol{num, name})
		}
		if noACL {
			continue
		}
		col := snapshot.ColumnACL{Name: name}
		items, err := in.ParseArrayText(a)
		if err != nil {
			*errs = append(*errs, fmt.Sprintf("database %q: column %s: unreadable ACL: %v", d.Name, col.Name, err))
		}
		col.ACL = items
		d.Relations[i].Columns = append(d.Relations[i].Columns, col)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	st := dbStateFrom(ctx)
	st.tenants = make(map[int][]string, len(tenants))
	for i, cols := range tenants {
		slices.SortFunc(cols, func(a, b tenantCol) int { return cmp.Compare(a.num, b.num) })
		for _, c := range cols {
			st.tenants[i] = append(st.tenants[i], c.name)
		}
	}
	st.tenantsRead = true
	summarizeRelations(d)
	return nil
}

// readRoutines pulls the functions of user schemas, and the built-ins
// whose ACL differs from "EXECUTE for PUBLIC".
func readRoutines(ctx context.Context, tx pgx.Tx, d *snapshot.Database, warns, errs *[]string) error {
	rows, err := tx.Query(ctx, `SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), pg_get_userbyid(p.proowner),
		p.prosecdef, p.proacl::text[]
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE (`+userSchemas+`) OR p.proacl IS NOT NULL ORDER BY 1, 2`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var f snapshot.Function
		var a []string
		if err := rows.Scan(&f.Schema, &f.Name, &f.Args, &f.Owner, &f.SecDef, &a); err != nil {
			return err
		}
		f.ACL, f.ACLDefault = parseACL(internerFrom(ctx), errs, func() string { return "function " + f.Signature() }, a)
		d.Routines = append(d.Routines, f)
	}
	return rows.Err()
}

func readLargeObjects(ctx context.Context, tx pgx.Tx, d *snapshot.Database, warns, errs *[]string) error {
	rows, err := tx.Query(ctx, `SELECT oid, pg_get_userbyid(lomowner), lomacl::text[] FROM pg_largeobject_metadata ORDER BY oid LIMIT 100001`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var lo snapshot.LargeObject
		var a []string
		if err := rows.Scan(&lo.OID, &lo.Owner, &a); err != nil {
			return err
		}
		lo.ACL, lo.ACLDefault = parseACL(internerFrom(ctx), errs, func() string { return fmt.Sprintf("large object %d", lo.OID) }, a)
		d.LargeObjects = append(d.LargeObjects, lo)
	}
	if len(d.LargeObjects) > 100000 {
		d.LargeObjects = d.LargeObjects[:100000]
		*warns = append(*warns, fmt.Sprintf("database %q: more than 100,000 large objects; only the first 100,000 are analysed", d.Name))
	}
	return rows.Err()
}
