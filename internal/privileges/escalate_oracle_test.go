package privileges

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// TestEscalationsOnServer generates login roles with CREATEROLE, ADMIN
// OPTION and 16's per-grant options towards the predefined OS roles, a
// superuser and plain roles, predicts from the model what each can gain
// (use a role's privileges: now, by SET ROLE, or after granting the role
// to itself; change a role's password), and then does each of these as
// the role, over its own login, on every major.
func TestEscalationsOnServer(t *testing.T) {
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		srv := majorServer(t, major)
		escalateOnServer(t, srv, major)
		if major >= 17 {
			maintainOnServer(t, srv, major)
		}
	})
}

// target is a role whose privileges an attacker may try to gain, and a
// statement only a holder of them can run.
type target struct{ name, action string }

func escalateOnServer(t *testing.T, srv *localpg.Server, major int) {
	ctx := pgtest.Ctx(t)
	start := time.Now()
	rng := mrand.New(mrand.NewSource(int64(major) * 7919))
	secret := make([]byte, 12)
	rand.Read(secret)
	pw := hex.EncodeToString(secret) // the attackers' password; never printed
	admin, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	run := func(s string, args ...any) {
		st := fmt.Sprintf(s, args...)
		if _, err := admin.Exec(ctx, st); err != nil {
			t.Fatalf("pg%d: %s: %v", major, st, err)
		}
	}
	run("CREATE TABLE public.probe (x text)")
	run("GRANT ALL ON public.probe TO PUBLIC")
	targets := []target{
		{"pg_execute_server_program", "COPY public.probe FROM PROGRAM 'echo 1'"},
		{"pg_read_server_files", "COPY public.probe FROM " + quoteLit(srv.DataDir+"/PG_VERSION")},
		{"pg_write_server_files", "COPY (SELECT 1) TO " + quoteLit(srv.DataDir+"/pgaegis_probe_out")},
		{"boss", "CREATE ROLE probe_super SUPERUSER"},
	}
	run("CREATE ROLE boss SUPERUSER NOLOGIN")
	// Plain roles, some of them with what CREATEROLE may not touch before 16.
	for i, attr := range []string{"LOGIN", "NOLOGIN", "LOGIN REPLICATION", "LOGIN BYPASSRLS", "NOLOGIN", "LOGIN"} {
		name := fmt.Sprintf("v%d", i)
		run("CREATE ROLE %s %s", name, attr)
		run("CREATE TABLE public.probe_%s (x int)", name)
		run("REVOKE ALL ON public.probe_%s FROM PUBLIC", name)
		run("GRANT SELECT ON public.probe_%s TO %s", name, name)
		targets = append(targets, target{name, "SELECT * FROM public.probe_" + name})
	}
	const nAttackers = 16
	var attackers []string
	for i := 0; i < nAttackers; i++ {
		name := fmt.Sprintf("a%02d", i)
		attackers = append(attackers, name)
		attr := "LOGIN"
		if i%3 == 0 {
			attr += " CREATEROLE"
		}
		if rng.Intn(4) == 0 {
			attr += " NOINHERIT"
		}
		run("CREATE ROLE %s %s PASSWORD %s", name, attr, quoteLit(pw))
	}
	withOpts := func() string {
		if major < 16 {
			if rng.Intn(2) == 0 {
				return " WITH ADMIN OPTION"
			}
			return ""
		}
		return fmt.Sprintf(" WITH ADMIN %v, INHERIT %v, SET %v", rng.Intn(2) == 0, rng.Intn(3) == 0, rng.Intn(3) == 0)
	}
	for _, a := range attackers {
		for k := 0; k < 2; k++ {
			tg := targets[rng.Intn(len(targets))]
			if tg.name == "boss" {
				continue // only a superuser grants boss; the generated grants run as one, so keep boss rare
			}
			run("GRANT %s TO %s%s", tg.name, a, withOpts())
		}
	}
	// Attackers inside attackers: ADMIN OPTION held by a role one inherits
	// (or only belongs to) is a different case from 16.
	for i := 1; i < nAttackers; i++ {
		if rng.Intn(2) == 0 {
			run("GRANT %s TO %s%s", attackers[rng.Intn(i)], attackers[i], withOpts())
		}
	}
	run("GRANT boss TO %s", attackers[1])
	// Hubs: roles that are no OS role or superuser themselves but reach
	// one. From 16 ADMIN OPTION alone on a hub (no SET, no INHERIT) lets
	// the holder grant the hub to itself, CREATEROLE or not (a03 has it,
	// a04 and a05 do not).
	hubOpts, adminOnly := "", " WITH ADMIN OPTION"
	if major >= 16 {
		hubOpts, adminOnly = " WITH INHERIT TRUE, SET FALSE", " WITH ADMIN TRUE, INHERIT FALSE, SET FALSE"
	}
	run("CREATE ROLE ops NOLOGIN")
	run("GRANT pg_execute_server_program TO ops%s", hubOpts)
	run("CREATE ROLE files NOLOGIN")
	run("GRANT pg_read_server_files TO files%s", hubOpts)
	run("GRANT files TO ops%s", hubOpts) // two steps away
	run("CREATE ROLE bossy NOLOGIN")
	run("GRANT boss TO bossy") // SET (and INHERIT) by default: bossy may SET ROLE boss
	run("GRANT ops TO %s%s", attackers[3], adminOnly)
	run("GRANT ops TO %s%s", attackers[4], adminOnly)
	run("GRANT bossy TO %s%s", attackers[5], adminOnly)
	hubs := []string{"ops", "files", "bossy"}
	for _, a := range attackers[6:] {
		if rng.Intn(3) == 0 {
			run("GRANT %s TO %s%s", hubs[rng.Intn(len(hubs))], a, withOpts())
		}
	}

	snap, err := collect.Collect(ctx, collect.Options{Conn: srv.ConnConfig("postgres"), NoFiles: true})
	if err != nil {
		t.Fatal(err)
	}
	m := Build(snap)
	idx := func(name string) int {
		i, ok := m.RoleIndex(name)
		if !ok {
			t.Fatalf("role %s not collected", name)
		}
		return i
	}

	cases, disagree, allowedN := 0, 0, 0
	// crGains counts what the CREATEROLE attackers gain of the OS roles,
	// and crRefused what they are refused: before 16 never refused.
	crGains, crRefused := 0, 0
	bySelfGrant := map[string]bool{} // attacker, role: gained only by granting itself the role
	gained := map[string]bool{}      // attacker, role: gained at all
	viaGrant := map[string]bool{}    // attacker, target: gained after granting itself some other role
	report := func(what string, predicted, did bool, why string) {
		cases++
		if did {
			allowedN++
		}
		if predicted != did {
			disagree++
			if disagree <= 12 {
				t.Errorf("pg%d: %s: model says %v (%s), the server let it: %v", major, what, predicted, why, did)
			}
		}
	}
	for _, a := range attackers {
		cfg := srv.ConnConfig("postgres")
		cfg.User, cfg.Password = a, pw
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatalf("pg%d: logging in as %s: %v", major, a, err)
		}
		// try runs the statements in a transaction that is rolled back,
		// and says whether all of them succeeded.
		try := func(stmts ...string) bool {
			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			for _, s := range stmts {
				if _, err := tx.Exec(ctx, s); err != nil {
					var pe *pgconn.PgError
					if !asPgError(err, &pe) {
						t.Fatalf("pg%d: %s as %s: %v", major, s, a, err)
					}
					return false
				}
			}
			return true
		}
		ai := idx(a)
		// viaGrant: after granting itself role y (16+: WITH SET, INHERIT)
		// the role uses the privileges of, or SETs ROLE to, which targets.
		for _, y := range append(append([]string{}, hubs...), attackers...) {
			if y == a {
				continue
			}
			self := "GRANT " + y + " TO " + a
			if major >= 16 {
				self += " WITH INHERIT TRUE, SET TRUE"
			}
			for _, tg := range targets {
				if _, os := osRoles[tg.name]; (os || tg.name == "boss") && !viaGrant[a+"\x00"+tg.name] {
					viaGrant[a+"\x00"+tg.name] = try(self, tg.action) || try(self, "SET ROLE "+tg.name, tg.action)
				}
			}
		}
		for _, tg := range targets {
			ti := idx(tg.name)
			self := "GRANT " + tg.name + " TO " + a
			if major >= 16 {
				self += " WITH INHERIT TRUE, SET TRUE"
			}
			direct := try(tg.action) || try("SET ROLE "+tg.name, tg.action)
			did := direct || try(self, "SET ROLE "+tg.name, tg.action)
			if !direct && did {
				bySelfGrant[a+"\x00"+tg.name] = true
			}
			gained[a+"\x00"+tg.name] = did
			grant, why := m.CanGrantSelf(ai, ti)
			inherit := m.HasPrivsOfRole(ai, ti) && !m.Roles[ti].Super // rolsuper is never inherited
			predicted := inherit || m.CanSetRole(ai, ti) || grant
			report(fmt.Sprintf("%s gains %s", a, tg.name), predicted, did, why)
			if _, os := osRoles[tg.name]; os && m.Roles[ai].CreateRole {
				if did {
					crGains++
				} else {
					crRefused++
				}
			}
		}
		for _, v := range append([]string{"boss", "v0", "v1", "v2", "v3", "v4", "v5", a}, attackers[rng.Intn(nAttackers)]) {
			ok, why := m.CanAlterPassword(ai, idx(v))
			report(fmt.Sprintf("%s changes the password of %s", a, v), ok, try("ALTER ROLE "+q(v)+" PASSWORD NULL"), why)
		}
		if m.Roles[ai].CreateRole {
			// What a role created by a CREATEROLE role gives its creator.
			for _, sg := range []string{"", "set", "set, inherit"} {
				wantAdmin, wantSet, _ := CreatedRoleGrants(major, sg)
				newRole := "n_" + a
				prefix := []string{"CREATE ROLE " + newRole}
				if major >= 16 {
					prefix = append([]string{"SET LOCAL createrole_self_grant = " + quoteLit(sg)}, prefix...)
				} else if sg != "" {
					continue // no such setting before 16
				}
				report(fmt.Sprintf("%s SET ROLE to a role it created (createrole_self_grant %q)", a, sg), wantSet,
					try(append(prefix, "SET ROLE "+newRole)...), "CreatedRoleGrants")
				report(fmt.Sprintf("%s holds ADMIN OPTION on a role it created (createrole_self_grant %q)", a, sg), wantAdmin,
					try(append(prefix, "DO $$BEGIN IF NOT pg_has_role(current_user, '"+newRole+"', 'MEMBER WITH ADMIN OPTION') THEN RAISE 'no'; END IF; END$$")...), "CreatedRoleGrants")
			}
		}
		c.Close(ctx)
	}
	// The chains Escalations reports through a self-grant are what the
	// server let the role do, and every OS role gained that way is reported.
	chains := 0
	reported := map[string]bool{}
	isAttacker := map[string]bool{}
	for _, a := range attackers {
		isAttacker[a] = true
	}
	for _, ch := range m.Escalations(snap) {
		if !isAttacker[ch.Role] {
			continue // the other tests' roles on the shared server
		}
		key := ch.Role + "\x00" + ch.Name
		switch ch.Kind {
		case "createrole":
			key = ch.Role + "\x00pg_execute_server_program"
			if ch.Target != "" {
				key = ch.Role + "\x00" + ch.Target
			}
		case "admin":
			key = ch.Role + "\x00" + ch.Target // Name is the role granted, maybe a hub
		default:
			continue
		}
		chains++
		reported[key] = true
		if !gained[key] && !viaGrant[key] {
			t.Errorf("pg%d: chain %s %s: the server did not let %s gain it (%v)", major, ch.Kind, ch.Object, ch.Role, ch.Steps)
		}
		if ev := ch.Steps[len(ch.Steps)-1].Evidence; !strings.Contains(ev, fmt.Sprintf("PostgreSQL %d", major)) {
			t.Errorf("pg%d: chain evidence does not name the version rule: %s", major, ev)
		}
	}
	for key := range bySelfGrant {
		a, role, _ := strings.Cut(key, "\x00")
		if _, os := osRoles[role]; os && !reported[key] && (role == "pg_execute_server_program" || major >= 16) {
			t.Errorf("pg%d: %s gained %s by granting it to itself, and no chain says so", major, a, role)
		}
	}
	// Every superuser or OS role an attacker can reach, in any of the
	// ways tried, is a chain, and no chain names one it cannot reach.
	chainTo := map[string]bool{}
	for _, ch := range m.Escalations(snap) {
		switch ch.Kind {
		case "membership":
			chainTo[ch.Role+"\x00"+ch.Name] = true
		case "admin":
			chainTo[ch.Role+"\x00"+ch.Target] = true
		case "createrole": // before 16: any non-superuser role, every OS role
			if ch.Target != "" {
				chainTo[ch.Role+"\x00"+ch.Target] = true // a superuser, through a role that may SET ROLE to it
				continue
			}
			for os := range osRoles {
				chainTo[ch.Role+"\x00"+os] = true
			}
		}
	}
	reach, reachN := 0, 0
	for _, a := range attackers {
		for _, tg := range targets {
			if _, os := osRoles[tg.name]; !os && tg.name != "boss" {
				continue
			}
			key := a + "\x00" + tg.name
			did := gained[key] || viaGrant[key]
			reach++
			if did {
				reachN++
			}
			if chainTo[key] != did {
				disagree++
				t.Errorf("pg%d: %s reaches %s: chains say %v, the server let it: %v (directly or by a self-grant: %v, through another role: %v)", major, a, tg.name, chainTo[key], did, gained[key], viaGrant[key])
			}
		}
	}
	cases += reach
	if !viaGrant[attackers[3]+"\x00pg_execute_server_program"] || !viaGrant[attackers[4]+"\x00pg_execute_server_program"] || !viaGrant[attackers[5]+"\x00boss"] {
		t.Errorf("pg%d: the hub grants did not give what they were built to give", major)
	}
	t.Logf("pg%d: %d of %d attacker/target pairs reachable", major, reachN, reach)
	t.Logf("ORACLE escalation pg%d: cases=%d disagreements=%d seconds=%.1f", major, cases, disagree, time.Since(start).Seconds())
	if allowedN < cases/10 || allowedN > cases*9/10 {
		t.Errorf("pg%d: too one-sided to test much: %d of %d allowed", major, allowedN, cases)
	}
	if (major < 16) != (crRefused == 0) || crGains == 0 {
		t.Errorf("pg%d: CREATEROLE roles gained %d and were refused %d of the OS roles: before 16 they gain all, from 16 only those they hold ADMIN OPTION on", major, crGains, crRefused)
	}
	if chains == 0 {
		t.Errorf("pg%d: no CREATEROLE or ADMIN chain reported: the generated roles have CREATEROLE and ADMIN OPTION", major)
	}
}

func quoteLit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func asPgError(err error, pe **pgconn.PgError) bool {
	p, ok := err.(*pgconn.PgError)
	if ok {
		*pe = p
	}
	return ok
}

// maintainOnServer: 17's MAINTAIN privilege and pg_maintain. A holder may
// VACUUM, ANALYZE, REINDEX, CLUSTER, LOCK and REFRESH relations it does not
// own; those run the owner's index expressions and view queries as the
// owner, with search_path pinned to pg_catalog, pg_temp, so no schema
// the holder can write to is searched (17 pins it for CREATE INDEX as
// well: an owner's unqualified name fails there).
func maintainOnServer(t *testing.T, srv *localpg.Server, major int) {
	ctx := pgtest.Ctx(t)
	start := time.Now()
	secret := make([]byte, 12)
	rand.Read(secret)
	pw := hex.EncodeToString(secret)
	stmts := []string{
		"CREATE ROLE m_holder LOGIN PASSWORD " + quoteLit(pw), "GRANT pg_maintain TO m_holder",
		"CREATE ROLE m_direct LOGIN PASSWORD " + quoteLit(pw),
		"CREATE ROLE m_none LOGIN PASSWORD " + quoteLit(pw),
		"CREATE ROLE m_noinh LOGIN NOINHERIT PASSWORD " + quoteLit(pw), "GRANT pg_maintain TO m_noinh",
		"CREATE SCHEMA app",
		`CREATE FUNCTION app.idx(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$BEGIN
			RAISE NOTICE 'owner code as % with search_path %', current_user, current_setting('search_path');
			RETURN $1; END$$`,
		"CREATE TABLE app.t (x int)", "INSERT INTO app.t VALUES (1), (2)",
		"CREATE INDEX t_idx ON app.t (app.idx(x))", "CREATE INDEX t_plain ON app.t (x)",
		"CREATE MATERIALIZED VIEW app.mv AS SELECT x FROM app.t",
		"GRANT USAGE ON SCHEMA app TO PUBLIC",
		"GRANT MAINTAIN ON app.t, app.mv TO m_direct",
		"GRANT CREATE ON SCHEMA public TO PUBLIC",
	}
	if err := srv.Exec(ctx, stmts...); err != nil {
		t.Fatal(err)
	}
	snap, err := collect.Collect(ctx, collect.Options{Conn: srv.ConnConfig("postgres"), NoFiles: true})
	if err != nil {
		t.Fatal(err)
	}
	m := Build(snap)
	db := findDB(snap, "postgres")
	acls := map[string]ACL{}
	for _, r := range db.Relations {
		if r.Schema == "app" {
			acls[r.Name] = m.Compile(Table, r.Owner, r.ACL, r.ACLDefault)
		}
	}
	cases, disagree := 0, 0
	for _, role := range []string{"m_holder", "m_direct", "m_none", "m_noinh"} {
		cfg := srv.ConnConfig("postgres")
		cfg.User, cfg.Password = role, pw
		var notices []string
		cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Severity+": "+n.Message) }
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ri, _ := m.RoleIndex(role)
		for _, op := range []struct{ rel, sql string }{
			{"t", "VACUUM app.t"}, {"t", "ANALYZE app.t"}, {"t", "REINDEX INDEX app.t_plain"},
			{"t", "CLUSTER app.t USING t_plain"}, {"t", "BEGIN; LOCK TABLE app.t IN ACCESS EXCLUSIVE MODE; COMMIT"},
			{"mv", "REFRESH MATERIALIZED VIEW app.mv"},
		} {
			notices = nil
			_, err := c.Exec(ctx, op.sql)
			if err != nil {
				c.Exec(ctx, "ROLLBACK")
			}
			did := err == nil
			for _, n := range notices {
				if strings.Contains(n, "permission denied") || strings.Contains(n, "skipping") {
					did = false // VACUUM and ANALYZE skip what they may not touch, with a warning
				}
			}
			res := m.Check(ri, Table, acls[op.rel], Maintain, false)
			cases++
			if res.Allowed != did {
				disagree++
				t.Errorf("pg%d: %s as %s: model %v (%s), server %v (%v %v)", major, op.sql, role, res.Allowed, res.Text, did, err, notices)
			}
		}
		// The index expression runs as the owner, with the pinned
		// search_path: the owner's code only, never resolved in the
		// holder's schemas.
		notices = nil
		_, err = c.Exec(ctx, "REINDEX INDEX app.t_idx")
		ran := false
		for _, n := range notices {
			ran = ran || strings.Contains(n, "owner code as "+srv.AdminUser+" with search_path pg_catalog, pg_temp")
		}
		allowed := m.Check(ri, Table, acls["t"], Maintain, false).Allowed
		cases++
		if (allowed && !ran) || (!allowed && err == nil) {
			disagree++
			t.Errorf("pg%d: REINDEX INDEX app.t_idx as %s: allowed %v, owner code ran as the owner with search_path pg_catalog, pg_temp: %v (%v, %v)", major, role, allowed, ran, err, notices)
		}
		c.Close(ctx)
	}
	t.Logf("ORACLE escalation-maintain pg%d: cases=%d disagreements=%d seconds=%.1f", major, cases, disagree, time.Since(start).Seconds())
}
