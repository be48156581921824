package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// StepText renders one step the way a report shows it as a finding's fix:
// the new pg_hba.conf lines with the old ones they replace, the ALTER
// SYSTEM lines, the SQL, the chmod, the command. It is code to read and
// paste; the report writers escape it for the terminal.
func StepText(s Step) string {
	var b strings.Builder
	switch s.Kind {
	case KindHBA:
		if s.HBA == nil {
			return s.Summary
		}
		fmt.Fprintf(&b, "in %s:\n", s.HBA.Path)
		for _, l := range s.HBA.Lines {
			switch {
			case l.Line == 0:
				fmt.Fprintf(&b, "  add:     %s\n", l.New)
			case l.New == "":
				fmt.Fprintf(&b, "  line %d: %s\n  remove it\n", l.Line, l.Old)
			default:
				fmt.Fprintf(&b, "  line %d: %s\n  become:  %s\n", l.Line, l.Old, l.New)
			}
		}
	case KindSettings:
		for _, c := range s.Settings {
			b.WriteString(AlterSystem(c) + "\n")
		}
	case KindSQL:
		if s.Database != "" {
			fmt.Fprintf(&b, "-- in database %s\n", quote.Ident(s.Database))
		}
		for _, q := range s.SQL {
			b.WriteString(statement(q) + "\n")
		}
	case KindFileMode:
		for _, m := range s.Modes {
			b.WriteString(chmod(m) + "\n")
		}
	case KindCommand:
		b.WriteString(shellCommand(s.Command) + "\n")
	}
	if b.Len() == 0 {
		return s.Summary
	}
	return strings.TrimRight(b.String(), "\n")
}

// statement ends a statement with exactly one semicolon.
func statement(q string) string {
	q = strings.TrimRight(q, " \t\n")
	return strings.TrimSuffix(q, ";") + ";"
}

func chmod(m ModeChange) string {
	return fmt.Sprintf("chmod %04o %s", uint32(m.To.Perm()), quote.Shell(m.Path))
}

func shellCommand(argv []string) string {
	w := make([]string, len(argv))
	for i, a := range argv {
		w[i] = quote.Shell(a)
	}
	return strings.Join(w, " ")
}

// listQuoted are the settings the server declares GUC_LIST_INPUT |
// GUC_LIST_QUOTE (guc_tables.c; guc.c before 16): ALTER SYSTEM quotes each
// of its arguments as one element, so 'pgaudit,auth_delay' is one library
// named "pgaudit,auth_delay". Each element must be its own literal. The
// value says how the server splits the list it reads back: identifier
// lists (SplitIdentifierString) end an unquoted element at a blank and
// fold it to lower case; directory lists (SplitDirectoriesString) take
// everything up to the comma as it is. TestListSettingsMatchServer checks
// the table against a real server.
var listQuoted = map[string]listKind{
	"search_path":               identList,
	"temp_tablespaces":          identList,
	"shared_preload_libraries":  dirList,
	"local_preload_libraries":   dirList,
	"session_preload_libraries": dirList,
	"unix_socket_directories":   dirList,
	"output_plugin_libraries":   dirList, // 15.20 and later minors
	"oauth_validator_libraries": dirList, // 18
}

type listKind int

const (
	identList listKind = iota + 1
	dirList
)

// ListSetting reports whether name is a setting whose ALTER SYSTEM value
// must be written as one literal per element.
func ListSetting(name string) bool { return listQuoted[strings.ToLower(name)] != 0 }

// SplitList splits the text of a list setting (as SHOW prints it) into
// its elements, the way the server reads it back. Settings that are not
// quoted lists give the whole value as one element.
func SplitList(name, value string) []string {
	kind := listQuoted[strings.ToLower(name)]
	if kind == 0 {
		return []string{value}
	}
	var out []string
	s := value
	for {
		s = strings.TrimLeft(s, " \t\n\r\f\v")
		if s == "" {
			return out
		}
		var elem string
		if s[0] == '"' {
			var b strings.Builder
			i := 1
			for i < len(s) {
				if s[i] == '"' {
					if i+1 < len(s) && s[i+1] == '"' {
						b.WriteByte('"')
						i += 2
						continue
					}
					break
				}
				b.WriteByte(s[i])
				i++
			}
			elem, s = b.String(), s[min(i+1, len(s)):]
			if j := strings.IndexByte(s, ','); j >= 0 {
				s = s[j:]
			} else {
				s = ""
			}
		} else {
			j := strings.IndexByte(s, ',')
			if j < 0 {
				j = len(s)
			}
			elem = strings.TrimRight(s[:j], " \t\n\r\f\v")
			if kind == identList {
				if k := strings.IndexAny(elem, " \t\n\r\f\v"); k >= 0 {
					elem = elem[:k]
				}
				elem = quote.LowerASCII(elem)
			}
			s = s[j:]
		}
		out = append(out, elem)
		s = strings.TrimPrefix(s, ",")
	}
}

// AlterSystem is the statement that sets c: the name as an identifier
// (each dotted part), the value as an SQL literal, and a quoted list
// setting as one literal per element. An empty list is RESET to the
// default (PostgreSQL 15 stores ” for such a list as one element "").
func AlterSystem(c SettingChange) string {
	var parts []string
	for _, p := range strings.Split(c.Name, ".") {
		parts = append(parts, quote.Ident(p))
	}
	name := strings.Join(parts, ".")
	var vals []string
	for _, e := range SplitList(c.Name, c.To) {
		vals = append(vals, quote.Literal(e))
	}
	if len(vals) == 0 {
		return "ALTER SYSTEM RESET " + name + ";"
	}
	return "ALTER SYSTEM SET " + name + " = " + strings.Join(vals, ", ") + ";"
}

// closed counts the distinct findings the steps close.
func closed(p *Plan) int {
	seen := map[string]bool{}
	for _, s := range p.Steps {
		for _, c := range s.Closes {
			seen[c.Rule+"\x00"+c.Object] = true
		}
	}
	return len(seen)
}

func applyWord(a string) string {
	switch a {
	case ApplyReload:
		return "takes effect on reload"
	case ApplyRestart:
		return "takes effect on restart"
	}
	return "takes effect at once"
}

// WriteText writes a plan for review: a header with its id, target and
// counts, each step numbered with what it closes, when it takes effect,
// what it can break and what must run first, then its content, then the
// findings left to the administrator and those held back. Names come from
// the server: everything is escaped for the terminal.
func WriteText(w io.Writer, p *Plan) error {
	one := textsafe.String // one-line fields: a newline in a name is shown, not obeyed
	var b strings.Builder
	fmt.Fprintf(&b, "%splan %s\ntarget: %s\n", sourceWord(p), one(p.ID), one(p.Target))
	if p.Source == "" {
		fmt.Fprintf(&b, "%d step(s) closing %d finding(s); %d manual; %d held back\n", len(p.Steps), closed(p), len(p.Manual), len(p.Held))
	} else {
		fmt.Fprintf(&b, "%d step(s), %d statement(s)\n", len(p.Steps), statements(p))
	}
	if p.Filtered > 0 {
		fmt.Fprintf(&b, "%d failing finding(s) left out by --only, --exclude or --min-severity\n", p.Filtered)
	}
	if p.NeedsRestart() {
		var ids []string
		for _, s := range p.Steps {
			if s.Apply == ApplyRestart {
				ids = append(ids, s.ID)
			}
		}
		fmt.Fprintf(&b, "needs a restart (step %s)\n", one(strings.Join(ids, ", ")))
	}
	if p.Empty() && p.Source == "" {
		b.WriteString("\nnothing to change automatically\n")
	} else if p.Empty() {
		b.WriteString("\nnothing to change: the server matches\n")
	}
	for _, s := range p.Steps {
		fmt.Fprintf(&b, "\nstep %s: %s\n", one(s.ID), one(s.Summary))
		fmt.Fprintf(&b, "  kind:    %s, %s\n", one(s.Kind), applyWord(s.Apply))
		for i, c := range s.Closes {
			label := "         "
			if i == 0 {
				label = "  closes:"
			}
			fmt.Fprintf(&b, "%s %s %s (%s)\n", label, one(c.Rule), one(c.Object), one(c.Severity))
		}
		if len(s.After) > 0 {
			fmt.Fprintf(&b, "  after:   step %s\n", one(strings.Join(s.After, ", step ")))
		}
		for _, br := range s.Breaks {
			fmt.Fprintf(&b, "  breaks:  %s\n", one(br))
		}
		b.WriteString(indent(stepBody(s), "    "))
	}
	if len(p.Manual) > 0 {
		b.WriteString("\nmanual (no automatic fix):\n")
		for _, m := range p.Manual {
			fmt.Fprintf(&b, "  %s %s (%s)\n%s", one(m.Rule), one(m.Object), one(m.Severity), indent(textsafe.Code(m.What), "      "))
		}
	}
	if len(p.Held) > 0 {
		b.WriteString("\nheld back:\n")
		for _, h := range p.Held {
			fmt.Fprintf(&b, "  %s %s (%s): %s\n", one(h.Rule), one(h.Object), one(h.Severity), one(h.Why))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// stepBody is a step's content in the text plan: for pg_hba.conf a
// diff-like view, old line to new line or removal, with the rules that
// asked; otherwise StepText.
func stepBody(s Step) string {
	if s.Kind == KindVerify || s.Kind == KindDeliver {
		return "" // the summary line says it all
	}
	if s.Kind != KindHBA || s.HBA == nil {
		return textsafe.Code(StepText(s))
	}
	one := textsafe.String
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n", one(s.HBA.Path))
	for _, l := range s.HBA.Lines {
		rules := one("[" + strings.Join(l.Rules, ", ") + "]")
		l.Old, l.New = one(l.Old), one(l.New)
		switch {
		case l.Line == 0:
			fmt.Fprintf(&b, "  added     %s  %s\n", l.New, rules)
		case l.New == "":
			fmt.Fprintf(&b, "  line %-4d %s\n        ->  removed  %s\n", l.Line, l.Old, rules)
		default:
			fmt.Fprintf(&b, "  line %-4d %s\n        ->  %s  %s\n", l.Line, l.Old, l.New, rules)
		}
	}
	return b.String()
}

func indent(s, prefix string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix) + "\n"
}

// WriteJSON writes the plan in its stable JSON form (docs/fix.md): lists
// are [] rather than null, so consumers need not tell them apart.
func WriteJSON(w io.Writer, p *Plan) error {
	c := *p
	if c.FormatVersion == 0 {
		c.FormatVersion = FormatVersion
	}
	c.Steps = append([]Step{}, p.Steps...)
	for i := range c.Steps {
		if c.Steps[i].Closes == nil {
			c.Steps[i].Closes = []FindingRef{}
		}
		if h := c.Steps[i].HBA; h != nil {
			hc := *h
			// The file may hold LDAP/RADIUS secrets: output never
			// carries them (the engine writes the real content).
			hc.Content = MaskedContent(h.Content)
			hc.Lines = append([]LineChange{}, h.Lines...)
			for j := range hc.Lines {
				if hc.Lines[j].Rules == nil {
					hc.Lines[j].Rules = []string{}
				}
			}
			c.Steps[i].HBA = &hc
		}
		if st := c.Steps[i].Settings; st != nil {
			c.Steps[i].Settings = append([]SettingChange{}, st...)
			for j := range c.Steps[i].Settings {
				if c.Steps[i].Settings[j].Rules == nil {
					c.Steps[i].Settings[j].Rules = []string{}
				}
			}
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(c)
}

// comment makes text safe for a one-line comment in a script: a name with
// a line break must not end the comment and become code.
func comment(s string) string { return textsafe.String(s) }

// sourceWord names what made the plan in its headers ("policy ").
func sourceWord(p *Plan) string {
	if p.Source == "" {
		return ""
	}
	return comment(p.Source) + " "
}

// statements counts the SQL statements of a plan.
func statements(p *Plan) int {
	n := 0
	for _, s := range p.Steps {
		n += len(s.SQL)
	}
	return n
}

func header(b *strings.Builder, lead string, p *Plan) {
	what := "fix"
	if p.Source != "" {
		what = comment(p.Source)
	}
	fmt.Fprintf(b, "%s pgaegis %s plan %s\n", lead, what, comment(p.ID))
	fmt.Fprintf(b, "%s target: %s\n", lead, comment(p.Target))
	if p.Source != "" {
		fmt.Fprintf(b, "%s %d step(s), %d statement(s)", lead, len(p.Steps), statements(p))
	} else {
		fmt.Fprintf(b, "%s %d step(s) closing %d finding(s)", lead, len(p.Steps), closed(p))
	}
	if p.NeedsRestart() {
		b.WriteString("; needs a restart")
	}
	b.WriteString("\n")
	for _, m := range p.Manual {
		fmt.Fprintf(b, "%s manual: %s %s: %s\n", lead, comment(m.Rule), comment(m.Object), comment(m.What))
	}
	for _, h := range p.Held {
		fmt.Fprintf(b, "%s held back: %s %s: %s\n", lead, comment(h.Rule), comment(h.Object), comment(h.Why))
	}
}

func stepComment(b *strings.Builder, lead string, s Step) {
	fmt.Fprintf(b, "\n%s step %s: %s (%s)\n", lead, comment(s.ID), comment(s.Summary), applyWord(s.Apply))
	for _, c := range s.Closes {
		fmt.Fprintf(b, "%s   closes %s %s (%s)\n", lead, comment(c.Rule), comment(c.Object), comment(c.Severity))
	}
	for _, br := range s.Breaks {
		fmt.Fprintf(b, "%s   can break: %s\n", lead, comment(br))
	}
	if len(s.After) > 0 {
		fmt.Fprintf(b, "%s   after step %s\n", lead, comment(strings.Join(s.After, ", ")))
	}
}

// psqlArg quotes a psql meta-command argument: single quotes, a quote
// doubled, and backslash escapes for the backslash and line breaks
// (psqlscanslash.l), so any name, a newline included, is one argument.
func psqlArg(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'':
			b.WriteString("''")
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 || c == 0x7f {
				fmt.Fprintf(&b, `\x%02x`, c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// plannedFor is " (user)" from a target's user=, or "".
func plannedFor(target string) string {
	for _, f := range strings.Fields(target) {
		if u, ok := strings.CutPrefix(f, "user="); ok && u != "" {
			return ", " + comment(u)
		}
	}
	return ""
}

// connStr is a libpq connection string naming only the database, so that
// a database called "x host=evil" is a name and not options.
func connStr(db string) string {
	return "dbname='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(db) + "'"
}

// WriteSQL writes the plan as a psql script for change review: each SQL
// step in its database (\connect) inside BEGIN/COMMIT, the ALTER SYSTEM
// lines followed by a reload, and the file changes as comments naming the
// file and its new content (a script run by psql cannot write them). Run
// it with psql -X -f FILE; it stops at the first error.
func WriteSQL(w io.Writer, p *Plan) error {
	var b strings.Builder
	header(&b, "--", p)
	if p.Source == "policy" {
		// A policy plan is diffed against what its role may see and do:
		// another role (a superuser too) would find another state.
		fmt.Fprintf(&b, "-- run with: psql -X -f THIS_FILE (as the role it was planned for%s)\n", plannedFor(p.Target))
	} else {
		b.WriteString("-- run with: psql -X -f THIS_FILE (as a superuser; file steps are comments only)\n")
	}
	b.WriteString("\\set ON_ERROR_STOP on\n")
	// Cluster-wide SQL runs in the database the script started in: remember
	// it as a connection string, so \connect can return to it by name.
	b.WriteString("SELECT 'dbname=''' || replace(replace(current_database(), '\\', '\\\\'), '''', '\\''') || '''' AS pgaegis_home \\gset\n")
	moved := false
	cut := afterRestart(p)
	if cut >= 0 {
		// psql cannot restart the server: the script runs in two parts,
		// the second after the restart (a library's own parameters are
		// refused until it is loaded).
		b.WriteString("\\if :{?after_restart}\n\\else\n")
	}
	for i, s := range p.Steps {
		if i == cut {
			if moved {
				b.WriteString("\\connect -reuse-previous=on :pgaegis_home\n")
				moved = false
			}
			b.WriteString("\\echo 'pgaegis: restart the server now, then run this script again with -v after_restart=1 for the rest'\n\\quit\n\\endif\n")
		}
		stepComment(&b, "--", s)
		switch s.Kind {
		case KindSQL:
			switch {
			case s.Database != "":
				fmt.Fprintf(&b, "\\connect -reuse-previous=on %s\n", psqlArg(connStr(s.Database)))
				moved = true
			case moved:
				b.WriteString("\\connect -reuse-previous=on :pgaegis_home\n")
				moved = false
			}
			if s.Autocommit { // CREATE DATABASE cannot run in a transaction
				for _, q := range s.SQL {
					b.WriteString(statement(q) + "\n")
				}
				break
			}
			b.WriteString("BEGIN;\n")
			for _, q := range s.SQL {
				b.WriteString(statement(q) + "\n")
			}
			b.WriteString("COMMIT;\n")
		case KindSettings:
			for _, c := range s.Settings {
				b.WriteString(AlterSystem(c) + "\n")
			}
			if s.Apply == ApplyReload {
				b.WriteString("SELECT pg_reload_conf();\n")
			} else {
				b.WriteString("-- these take effect when the server restarts\n")
			}
		case KindHBA:
			if s.HBA == nil {
				continue
			}
			fmt.Fprintf(&b, "-- write %s with this content, then SELECT pg_reload_conf();\n", comment(s.HBA.Path))
			for _, l := range strings.Split(strings.TrimSuffix(MaskedContent(s.HBA.Content), "\n"), "\n") {
				fmt.Fprintf(&b, "--| %s\n", comment(l))
			}
		case KindFileMode:
			for _, m := range s.Modes {
				fmt.Fprintf(&b, "-- %s\n", comment(chmod(m)))
			}
		case KindCommand:
			fmt.Fprintf(&b, "-- run: %s\n", comment(shellCommand(s.Command)))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// heredocEnd picks a heredoc delimiter no line of content equals.
func heredocEnd(base, content string) string {
	lines := map[string]bool{}
	for _, l := range strings.Split(content, "\n") {
		lines[l] = true
	}
	d := base
	for i := 1; lines[d]; i++ {
		d = fmt.Sprintf("%s_%d", base, i)
	}
	return d
}

// WriteShell writes the plan as a POSIX sh script (set -eu): pg_hba.conf
// written whole through a quoted heredoc to a temporary file beside it
// (a copy, so it keeps the owner and mode) and moved over it, with a .bak
// copy first; chmod; SQL and ALTER SYSTEM through psql; a reload after
// each step that needs one; a restart only as a marked final command the
// operator turns on (PGAEGIS_RESTART=1). Every path and argument is one
// shell word; the connection comes from the PG* variables.
func WriteShell(w io.Writer, p *Plan) error {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	header(&b, "#", p)
	b.WriteString("# run as the cluster's OS user; PGHOST, PGPORT, PGUSER, PGDATABASE select the server\n")
	b.WriteString("set -eu\n")
	b.WriteString("pgaegis_psql() { psql -X -q -v ON_ERROR_STOP=1 \"$@\"; }\n")
	b.WriteString("pgaegis_reload() { pgaegis_psql -c 'SELECT pg_reload_conf()' >/dev/null; }\n")
	var restart []string
	// The file's credentials must not travel in a script, and a script
	// that stops halfway leaves a half-applied plan: refuse up front.
	for _, s := range p.Steps {
		if s.Kind == KindHBA && s.HBA != nil && MaskedContent(s.HBA.Content) != s.HBA.Content {
			fmt.Fprintf(&b, "echo %s >&2\nexit 1\n", quote.Shell("pg_hba.conf holds credentials (ldapbindpasswd, radiussecret): apply this plan with 'pgaegis fix --apply', not from a script"))
			_, err := io.WriteString(w, b.String())
			return err
		}
	}
	cut := afterRestart(p)
	if cut >= 0 {
		b.WriteString("if [ \"${PGAEGIS_AFTER_RESTART:-}\" != 1 ]; then\n")
	}
	for i, s := range p.Steps {
		if i == cut {
			restartBlock(&b, restart, true)
			restart = nil
			b.WriteString("fi\n")
		}
		stepComment(&b, "#", s)
		switch s.Kind {
		case KindCommand:
			b.WriteString(shellCommand(s.Command) + "\n")
		case KindFileMode:
			for _, m := range s.Modes {
				fmt.Fprintf(&b, "chmod %04o -- %s\n", uint32(m.To.Perm()), quote.Shell(m.Path))
			}
		case KindSQL:
			var sql strings.Builder
			sql.WriteString("BEGIN;\n")
			for _, q := range s.SQL {
				sql.WriteString(statement(q) + "\n")
			}
			sql.WriteString("COMMIT;\n")
			db := ""
			if s.Database != "" {
				db = " -d " + quote.Shell(connStr(s.Database))
			}
			end := heredocEnd("PGAEGIS_SQL", sql.String())
			fmt.Fprintf(&b, "pgaegis_psql%s -f - <<'%s'\n%s%s\n", db, end, sql.String(), end)
		case KindSettings:
			for _, c := range s.Settings {
				fmt.Fprintf(&b, "pgaegis_psql -c %s\n", quote.Shell(AlterSystem(c)))
			}
		case KindHBA:
			if s.HBA == nil {
				continue
			}
			path := quote.Shell(s.HBA.Path)
			content := s.HBA.Content
			if content != "" && !strings.HasSuffix(content, "\n") {
				content += "\n"
			}
			end := heredocEnd("PGAEGIS_HBA", content)
			fmt.Fprintf(&b, "cp -p -- %s %s\n", path, quote.Shell(s.HBA.Path+".pgaegis-"+p.ID+".bak"))
			tmp := quote.Shell(s.HBA.Path + ".pgaegis-new")
			fmt.Fprintf(&b, "cp -p -- %s %s\n", path, tmp)
			fmt.Fprintf(&b, "cat > %s <<'%s'\n%s%s\n", tmp, end, content, end)
			fmt.Fprintf(&b, "mv -f -- %s %s\n", tmp, path)
		}
		switch s.Apply {
		case ApplyReload:
			b.WriteString("pgaegis_reload\n")
		case ApplyRestart:
			restart = append(restart, s.ID)
		}
	}
	if len(restart) > 0 {
		restartBlock(&b, restart, false)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// afterRestart is the index of the first step that must wait for a
// restart step (After names it), or -1.
func afterRestart(p *Plan) int {
	restart := map[string]bool{}
	for i, s := range p.Steps {
		for _, a := range s.After {
			if restart[a] {
				return i
			}
		}
		if s.Apply == ApplyRestart {
			restart[s.ID] = true
		}
	}
	return -1
}

// restartBlock restarts the server when the operator asked for it
// (PGAEGIS_RESTART=1); otherwise it says so, and, when more steps follow
// (more), stops: they need the restart.
func restartBlock(b *strings.Builder, ids []string, more bool) {
	fmt.Fprintf(b, "\n# ==== RESTART NEEDED: step %s take(s) effect only when the server restarts ====\n", strings.Join(ids, ", "))
	b.WriteString("if [ \"${PGAEGIS_RESTART:-}\" = 1 ]; then\n")
	b.WriteString("\t\"${PG_CTL:-pg_ctl}\" restart -D \"${PGDATA:?set PGDATA to the data directory}\" -m fast -w\n")
	b.WriteString("else\n")
	if more {
		b.WriteString("\techo 'pgaegis: restart the server now, then run this script again with PGAEGIS_AFTER_RESTART=1 for the rest (or run it with PGAEGIS_RESTART=1 PGDATA=... [PG_CTL=...])' >&2\n")
		b.WriteString("\texit 0\n")
	} else {
		b.WriteString("\techo 'pgaegis: restart the server for the remaining steps (or run again with PGAEGIS_RESTART=1 PGDATA=... [PG_CTL=...])' >&2\n")
	}
	b.WriteString("fi\n")
}

// MaskedContent is a pg_hba.conf with every credential option masked
// (hba.MaskLine), for output.
func MaskedContent(content string) string {
	if !strings.Contains(content, "=") {
		return content
	}
	lines := strings.SplitAfter(content, "\n")
	for i, l := range lines {
		nl := strings.HasSuffix(l, "\n")
		m := hba.MaskLine(strings.TrimSuffix(l, "\n"))
		if nl {
			m += "\n"
		}
		lines[i] = m
	}
	return strings.Join(lines, "")
}
