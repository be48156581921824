package rules

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pgaegis/pgaegis/internal/privileges"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/sensitive"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// Sensitive data: columns that look like credentials or personal data, who
// can read and write them, and (with --sample-data) whether credential
// columns hold hashes or ciphertext.

const pgcryptoAdvice = "encrypt the column with pgcrypto (pgp_sym_encrypt / pgp_pub_encrypt) with the key kept outside the database (a KMS, Vault, the application's secret store), store passwords as hashes (crypt() with gen_salt('bf') or the application's bcrypt/argon2), and narrow reading with column grants or row-level security"

func init() {
	register(&Rule{
		ID: "DATA-01", Title: "Credential columns are not readable by PUBLIC or by every login role", Area: AreaRoles, Severity: High,
		Rationale:  "A column named like a password, secret, token, API key, private key or card number that any role can SELECT gives every login (and every injection through any application) the credentials, or the hashes to crack offline. Reading should be limited to the role that verifies them; row-level security narrows which rows, not which columns.",
		References: refs(cis("4.7"), seeds("000: roles and column grants", "004: revoke PUBLIC", "004: pgcrypto")),
		Check:      func(c *Check) { c.sensitiveAccess(sensitive.Credential) },
	})
	register(&Rule{
		ID: "DATA-02", Title: "Credential columns hold hashes or ciphertext, not plain text", Area: AreaRoles, Severity: Critical,
		Rationale:  "Passwords and secrets kept in plain text are exposed by any read, backup, replica or log of a query. A bounded read-only sample (pgaegis audit --sample-data, at most 200 rows per column, classified in memory: only counts are kept) tells hashes (bcrypt, scrypt, argon2, PBKDF2, sha-crypt, SCRAM, md5) and pgcrypto ciphertext from plain text.",
		References: refs(seeds("004: pgcrypto", "004: disk encryption")),
		Check:      checkCredentialValues,
	})
	register(&Rule{
		ID: "DATA-03", Title: "Personal-data columns are not readable by PUBLIC", Area: AreaRoles, Severity: Medium,
		Rationale:  "Email addresses, phone numbers, dates of birth, social security and bank account numbers readable by PUBLIC reach every role that can connect. Grant SELECT on them to the roles that need them.",
		References: refs(seeds("000: roles and column grants", "004: revoke PUBLIC")),
		Check:      func(c *Check) { c.sensitiveAccess(sensitive.Personal) },
	})
	register(&Rule{
		ID: "DATA-04", Title: "Tables with credential columns use pgcrypto or row-level security", Area: AreaHardening, Severity: Low,
		Rationale:  "The guides protect sensitive columns with pgcrypto, its keys stored outside the database, and narrow access with row-level security. A table with credential columns in a database without pgcrypto, without RLS, and (when sampled) whose values are not all hashes or ciphertext has neither layer.",
		References: refs(seeds("004: pgcrypto", "004: RLS")),
		Check:      checkSensitiveProtection,
	})
}

// sensitiveDatabases are the collected databases whose sensitive columns
// were read; the others are reported not checked.
func (c *Check) sensitiveDatabases() []*snapshot.Database {
	dbs, ok := c.databases()
	if !ok {
		return nil
	}
	var out []*snapshot.Database
	for _, d := range dbs {
		if !d.SensitiveRead {
			c.NotChecked("database "+d.Name, "its columns were not read for sensitive names")
			continue
		}
		out = append(out, d)
	}
	return out
}

// columnAccess is who can reach one sensitive column.
type columnAccess struct {
	public, publicTable bool // SELECT to PUBLIC (on the table when publicTable)
	readers, writers    []string
	everyLogin          bool
	rls                 string // "" or how RLS narrows reading
}

// access works out who can read and write a column: SELECT (or INSERT,
// UPDATE) on the table or the column, with USAGE on its schema. Superusers
// are left out of the lists (they read everything).
func accessOf(m *privileges.Model, d *snapshot.Database, sc snapshot.Schema, r *snapshot.Relation, col string) columnAccess {
	var a columnAccess
	m = m.InDatabase(d.Name)
	schema := m.Compile(privileges.Schema, sc.Owner, sc.ACL, sc.ACLDefault)
	table := m.Compile(privileges.Table, r.Owner, r.ACL, r.ACLDefault)
	var colACL privileges.ACL
	hasCol := false
	for _, ca := range r.Columns {
		if ca.Name == col {
			colACL, hasCol = m.Compile(privileges.ColumnKind, r.Owner, ca.ACL, false), true
		}
	}
	for _, e := range table.Entries {
		if e.Grantee == -1 && e.Privs&privileges.Select != 0 {
			a.public, a.publicTable = true, true
		}
	}
	for _, e := range colACL.Entries {
		if e.Grantee == -1 && e.Privs&privileges.Select != 0 {
			a.public = true
		}
	}
	logins, loginReaders := 0, 0
	for i, role := range m.Roles {
		if role.Predefined || role.Super {
			continue
		}
		usage := m.Check(i, privileges.Schema, schema, privileges.Usage, false).Allowed
		read := usage && m.CheckColumn(i, table, colACL, hasCol, privileges.Select, false).Allowed
		write := usage && (m.CheckColumn(i, table, colACL, hasCol, privileges.Update, false).Allowed ||
			m.CheckColumn(i, table, colACL, hasCol, privileges.Insert, false).Allowed)
		if read {
			a.readers = append(a.readers, role.Name)
		}
		if write {
			a.writers = append(a.writers, role.Name)
		}
		if role.Login && role.Name != r.Owner {
			logins++
			if read {
				loginReaders++
			}
		}
	}
	// One login role that may read is an application's grant; all of
	// several is everyone.
	a.everyLogin = logins >= 2 && loginReaders == logins
	if r.RLS {
		for _, t := range d.RLSTables {
			if t.Schema == r.Schema && t.Name == r.Name {
				if len(t.Policies) > 0 {
					n := fmt.Sprintf("%d policies", len(t.Policies))
					if len(t.Policies) == 1 {
						n = "1 policy"
					}
					a.rls = fmt.Sprintf("row-level security is enabled with %s: readers other than the owner%s see only the rows the policies allow", n, map[bool]string{true: " (forced: the owner too)", false: ""}[t.Forced])
				} else {
					a.rls = "row-level security is enabled with no policy: readers other than the owner see no rows"
				}
			}
		}
	}
	return a
}

func describeAccess(a columnAccess) string {
	read, write := "no role but superusers", "no role but superusers"
	if len(a.readers) > 0 {
		read = someNames(a.readers)
	}
	if len(a.writers) > 0 {
		write = someNames(a.writers)
	}
	s := fmt.Sprintf("readable by %s; writable by %s", read, write)
	if a.rls != "" {
		s += "; " + a.rls
	}
	return s
}

// sensitiveAccess lists the columns of one kind with who can read and
// write them, and fails those PUBLIC (or, for credentials, every login
// role) can read.
func (c *Check) sensitiveAccess(kind string) {
	dbs := c.sensitiveDatabases()
	if dbs == nil {
		return
	}
	m := privileges.Build(c.S)
	seen := 0
	for _, d := range dbs {
		schemas := map[string]snapshot.Schema{}
		for _, sc := range d.Schemas {
			schemas[sc.Name] = sc
		}
		rels := map[string]*snapshot.Relation{}
		for i := range d.Relations {
			r := &d.Relations[i]
			rels[r.Schema+"\x00"+r.Name] = r
		}
		for _, col := range d.SensitiveColumns {
			if col.Kind != kind {
				continue
			}
			r, ok := rels[col.Schema+"\x00"+col.Table]
			sc, ok2 := schemas[col.Schema]
			obj := fmt.Sprintf("column %s.%s in database %s", quote.Qualified(col.Schema, col.Table), quote.Ident(col.Column), d.Name)
			if !ok || !ok2 {
				c.NotChecked(obj, "the table's privileges were not read")
				continue
			}
			seen++
			a := accessOf(m, d, sc, r, col.Column)
			ev := fmt.Sprintf("%s column (%s, type %s): %s", col.Label, kind, col.Type, describeAccess(a))
			bad := a.public || (kind == sensitive.Credential && a.everyLogin)
			if !bad {
				c.Pass(obj, ev)
				continue
			}
			table := quote.Qualified(col.Schema, col.Table)
			p := Problem{Object: obj, Evidence: ev, Database: d.Name,
				Expected: "SELECT on the column only for the roles that need it, never PUBLIC"}
			switch {
			case a.publicTable:
				p.Evidence += "; PUBLIC holds SELECT on the table"
				p.Fix, p.FixKind = fmt.Sprintf("REVOKE SELECT ON TABLE %s FROM PUBLIC;", table), FixSQL
				p.Evidence += " (revoking it takes the table's other columns from PUBLIC too: grant those back to the roles that need them)"
			case a.public:
				p.Evidence += "; PUBLIC holds SELECT on the column"
				p.Fix, p.FixKind = fmt.Sprintf("REVOKE SELECT (%s) ON TABLE %s FROM PUBLIC;", quote.Ident(col.Column), table), FixSQL
			default:
				p.Evidence += "; every login role can read it (through the roles they belong to)"
				p.Fix = fmt.Sprintf("revoke SELECT on %s from the group roles every login role belongs to, and grant SELECT (%s) only to the role that verifies it", table, quote.Ident(col.Column))
			}
			if a.rls != "" && kind == sensitive.Credential {
				// RLS narrows the rows: still a finding, one step lower.
				p.Severity, p.SevSet = Medium, true
			}
			c.Fail(p)
		}
	}
	if seen == 0 && len(dbs) > 0 {
		c.Pass("databases", fmt.Sprintf("no %s-looking column in the user tables of %d database(s)", kind, len(dbs)))
	}
}

func checkCredentialValues(c *Check) {
	dbs := c.sensitiveDatabases()
	if dbs == nil {
		return
	}
	if !c.S.SampleData {
		c.NotChecked("credential column values", "not checked: value sampling is off (pgaegis audit --sample-data reads at most 200 values per credential column, read-only, and keeps only counts)")
		return
	}
	seen := 0
	for _, d := range dbs {
		for _, col := range d.SensitiveColumns {
			if col.Kind != sensitive.Credential {
				continue
			}
			seen++
			obj := fmt.Sprintf("column %s.%s in database %s", quote.Qualified(col.Schema, col.Table), quote.Ident(col.Column), d.Name)
			s := col.Sample
			if s == nil {
				reason := col.SampleError
				if reason == "" {
					reason = "not sampled"
				}
				c.NotChecked(obj, reason)
				continue
			}
			counts := sampleCounts(s)
			if s.Rows == 0 {
				c.Pass(obj, "no non-null value to sample")
				continue
			}
			if s.Plain == 0 {
				c.Pass(obj, counts)
				continue
			}
			c.Fail(Problem{Object: obj, Database: d.Name,
				Evidence: fmt.Sprintf("%s column: %s; %d value(s) look like plain text", col.Label, counts, s.Plain),
				Expected: "hashes (bcrypt, argon2, scrypt, SCRAM) for passwords, pgcrypto ciphertext for secrets that must be read back",
				Fix:      pgcryptoAdvice})
		}
	}
	if seen == 0 && len(dbs) > 0 {
		c.Pass("databases", "no credential-looking column to sample")
	}
}

// sampleCounts renders a sample's verdicts (counts and formats, never values).
func sampleCounts(s *snapshot.ValueSample) string {
	parts := []string{fmt.Sprintf("%d sampled", s.Rows)}
	for _, x := range []struct {
		n    int
		what string
	}{{s.Hashed, "hashed"}, {s.Encrypted, "encrypted"}, {s.Plain, "plain text"}, {s.Empty, "empty"}} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", x.n, x.what))
		}
	}
	var fs []string
	for f, n := range s.Formats {
		fs = append(fs, fmt.Sprintf("%s %d", f, n))
	}
	sort.Strings(fs)
	out := strings.Join(parts, ", ")
	if len(fs) > 0 {
		out += " (" + strings.Join(fs, ", ") + ")"
	}
	return out
}

func checkSensitiveProtection(c *Check) {
	dbs := c.sensitiveDatabases()
	if dbs == nil {
		return
	}
	for _, d := range dbs {
		pgcrypto := false
		for _, e := range d.Extensions {
			pgcrypto = pgcrypto || e.Name == "pgcrypto"
		}
		rls := map[string]bool{}
		for _, r := range d.Relations {
			if r.RLS {
				rls[r.Schema+"\x00"+r.Name] = true
			}
		}
		// One finding per table, with its credential columns.
		type tbl struct {
			cols      []string
			protected bool
			plain     bool // sampled, and some value is plain text
		}
		tables := map[string]*tbl{}
		var order []string
		for _, col := range d.SensitiveColumns {
			if col.Kind != sensitive.Credential {
				continue
			}
			k := col.Schema + "\x00" + col.Table
			t, ok := tables[k]
			if !ok {
				t = &tbl{protected: true}
				tables[k] = t
				order = append(order, k)
			}
			t.cols = append(t.cols, col.Column)
			// Sampled and all hashes or ciphertext: the values are protected.
			if col.Sample == nil || col.Sample.Plain > 0 || col.Sample.Hashed+col.Sample.Encrypted == 0 {
				t.protected = false
			}
			t.plain = t.plain || (col.Sample != nil && col.Sample.Plain > 0)
		}
		for _, k := range order {
			t := tables[k]
			schema, name, _ := strings.Cut(k, "\x00")
			obj := fmt.Sprintf("table %s in database %s", quote.Qualified(schema, name), d.Name)
			switch {
			case rls[k]:
				c.Pass(obj, "row-level security is enabled")
			case pgcrypto && !t.plain:
				// Installed is not used: a sample with plain text overrules it.
				c.Pass(obj, "pgcrypto is installed in the database")
			case t.protected:
				c.Pass(obj, "the sampled values of its credential columns are all hashes or ciphertext")
			default:
				ev := fmt.Sprintf("credential column(s) %s; no pgcrypto in database %s, no row-level security on the table", strings.Join(t.cols, ", "), d.Name)
				if pgcrypto {
					ev = fmt.Sprintf("credential column(s) %s; pgcrypto is installed in database %s but sampled values are plain text; no row-level security on the table", strings.Join(t.cols, ", "), d.Name)
				}
				c.Fail(Problem{Object: obj, Database: d.Name,
					Evidence: ev,
					Expected: "credential columns encrypted or hashed (pgcrypto, keys outside the database) and reading narrowed (RLS, column grants)",
					Fix:      pgcryptoAdvice})
			}
		}
	}
}
