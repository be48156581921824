package collect

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// ownerRoutes returns SQL conditions on role r (pg_roles r) and the role
// oid expression o: r has o's privileges (inh), may SET ROLE to o (set),
// or may grant itself o (adm). They differ by major: 16 split membership
// into INHERIT and SET options and made CREATEROLE administer only the
// roles it holds ADMIN on; before 16 every member may SET ROLE and
// CREATEROLE may grant itself any role that is not a superuser.
func ownerRoutes(major int, o string) (inh, set, adm string) {
	inh = fmt.Sprintf(`pg_has_role(r.oid, %s, 'USAGE')`, o)
	if major >= 16 {
		return inh, fmt.Sprintf(`pg_has_role(r.oid, %s, 'SET')`, o), fmt.Sprintf(`pg_has_role(r.oid, %s, 'MEMBER WITH ADMIN OPTION')`, o)
	}
	return inh, fmt.Sprintf(`pg_has_role(r.oid, %s, 'MEMBER')`, o),
		fmt.Sprintf(`(pg_has_role(r.oid, %[1]s, 'MEMBER WITH ADMIN OPTION') OR (r.rolcreaterole AND NOT (SELECT rolsuper FROM pg_roles WHERE oid = %[1]s)))`, o)
}

// replacerSQL and actorSQL: the roles (not superusers) that can CREATE OR
// REPLACE the function p (act as its owner, with CREATE on its schema as
// the role that does it), and those that can act as its owner at all
// (ALTER FUNCTION: its settings, search_path included).
func replacerSQL(major int) (replacers, actors string) {
	inh, set, adm := ownerRoutes(major, "p.proowner")
	own := `has_schema_privilege(r.oid, p.pronamespace, 'CREATE')`
	owners := `has_schema_privilege(p.proowner, p.pronamespace, 'CREATE')`
	cond := fmt.Sprintf(`((%[1]s AND %[4]s) OR ((%[2]s OR %[3]s) AND %[5]s) OR (%[3]s AND r.rolinherit AND %[4]s))`, inh, set, adm, own, owners)
	q := `ARRAY(SELECT r.rolname::text FROM pg_roles r WHERE NOT r.rolsuper AND %s ORDER BY 1)`
	return fmt.Sprintf(q, cond), fmt.Sprintf(q, "("+inh+" OR "+set+" OR "+adm+")")
}

// readEventTriggers reads pg_event_trigger (readable by every role) with
// the function each trigger runs and the roles that can replace it.
func readEventTriggers(ctx context.Context, tx pgx.Tx, d *snapshot.Database, _, _ *[]string) error {
	var num int
	if err := tx.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&num); err != nil {
		return err
	}
	rep, act := replacerSQL(num / 10000)
	rows, err := tx.Query(ctx, `SELECT e.evtname, e.evtevent, e.evtenabled::text, coalesce(e.evttags, '{}'),
		pg_get_userbyid(e.evtowner), coalesce(ro.rolsuper, false),
		p.oid::regprocedure::text, pg_get_userbyid(p.proowner), coalesce(rf.rolsuper, false), l.lanname, p.prosecdef,
		coalesce((SELECT substr(c, 13) FROM unnest(p.proconfig) c WHERE c LIKE 'search\_path=%' LIMIT 1), ''),
		`+rep+`, `+act+`
		FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid JOIN pg_language l ON l.oid = p.prolang
		LEFT JOIN pg_roles ro ON ro.oid = e.evtowner LEFT JOIN pg_roles rf ON rf.oid = p.proowner
		ORDER BY e.evtname`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var t snapshot.EventTrigger
		if err := rows.Scan(&t.Name, &t.Event, &t.Enabled, &t.Tags, &t.Owner, &t.OwnerSuper, &t.Function, &t.FunctionOwner,
			&t.FunctionOwnerSuper, &t.Language, &t.SecDef, &t.SearchPath, &t.Replacers, &t.OwnerActors); err != nil {
			return err
		}
		d.EventTriggers = append(d.EventTriggers, t)
	}
	return rows.Err()
}
