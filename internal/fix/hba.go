package fix

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/pgaegis/pgaegis/internal/guc"
	"github.com/pgaegis/pgaegis/internal/hba"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/remedy"
	"github.com/pgaegis/pgaegis/internal/safefile"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// readHBA reads a pg_hba.conf for the planner; tests swap it.
var readHBA = safefile.ReadConfig

// methodRank orders the methods the rules ask for: when several findings
// want different methods on one line, the strongest wins, so that no
// order of the edits can put a weaker method back.
var methodRank = map[string]int{"peer": 1, "scram-sha-256": 2, "cert": 3, "reject": 4}

// typeRank: hostssl over host/hostnossl.
var typeRank = map[string]int{hba.Host: 1, hba.HostNoSSL: 1, hba.HostNoGSSEnc: 1, hba.HostGSSEnc: 2, hba.HostSSL: 3}

// lineWant is what every finding asked of one line, composed.
type lineWant struct {
	typ, method string
	users       []string
	del         bool
	before      []string
	rules       []string
	items       []item
}

func (w *lineWant) add(it item) {
	e := it.c.HBA
	w.items = append(w.items, it)
	w.rules = appendOnce(w.rules, it.f.Rule)
	if e.Delete {
		w.del = true
	}
	if e.Type != "" && (w.typ == "" || typeRank[e.Type] > typeRank[w.typ]) {
		w.typ = e.Type
	}
	if e.Method != "" && (w.method == "" || methodRank[e.Method] > methodRank[w.method]) {
		w.method = e.Method
	}
	if len(e.Users) > 0 && len(w.users) == 0 {
		w.users = e.Users
	}
	for _, l := range e.Before {
		w.before = appendOnce(w.before, l)
	}
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// fileWant is what was asked of one file.
type fileWant struct {
	path   string
	lines  map[int]*lineWant
	append []string
	// appendRules and appendItems are the findings behind append.
	appendRules []string
	items       []item
}

// planHBA composes every pg_hba.conf edit into one rewrite per file (an
// included file is edited where it is): one new text per changed line,
// however many rules asked, so that the order the fixes are read in no
// longer matters.
func planHBA(s *snapshot.Snapshot, items []item, sslAfter bool) ([]built, []plan.Held) {
	var heldSSL []plan.Held
	if !sslAfter {
		items, heldSSL = withoutHostSSL(items)
	}
	files := map[string]*fileWant{}
	var order []string
	for _, it := range items {
		e := it.c.HBA
		path := e.File
		if path == "" {
			path = mainHBAPath(s)
		}
		fw := files[path]
		if fw == nil {
			fw = &fileWant{path: path, lines: map[int]*lineWant{}}
			files[path] = fw
			order = append(order, path)
		}
		fw.items = append(fw.items, it)
		if e.Line == 0 {
			for _, l := range e.Append {
				fw.append = appendOnce(fw.append, l)
			}
			fw.appendRules = appendOnce(fw.appendRules, it.f.Rule)
			continue
		}
		lw := fw.lines[e.Line]
		if lw == nil {
			lw = &lineWant{}
			fw.lines[e.Line] = lw
		}
		lw.add(it)
	}
	var out []built
	held := heldSSL
	for _, path := range order {
		b, h := planHBAFile(s, files[path])
		if b != nil {
			out = append(out, *b)
		}
		held = append(held, h...)
	}
	return out, held
}

func mainHBAPath(s *snapshot.Snapshot) string {
	if s.HBA != nil && s.HBA.Path != "" {
		return s.HBA.Path
	}
	return s.Target.HBAFile
}

// physLine is one physical line of the file with its line ending.
type physLine struct{ text, eol string }

func splitPhys(data string) []physLine {
	var out []physLine
	for len(data) > 0 {
		i := strings.IndexByte(data, '\n')
		var l physLine
		if i < 0 {
			l.text, data = data, ""
		} else {
			l.text, l.eol, data = data[:i], "\n", data[i+1:]
		}
		if strings.HasSuffix(l.text, "\r") {
			l.text, l.eol = l.text[:len(l.text)-1], "\r"+l.eol
		}
		out = append(out, l)
	}
	return out
}

// logical returns the text of the logical line starting at physical
// index i (0-based) and how many physical lines it spans: a trailing
// backslash joins the next line, as the server reads it.
func logical(lines []physLine, i int) (string, int) {
	var b strings.Builder
	n := 0
	for i+n < len(lines) {
		t := lines[i+n].text
		n++
		if strings.HasSuffix(t, `\`) && i+n < len(lines) {
			b.WriteString(t[:len(t)-1])
			continue
		}
		b.WriteString(t)
		break
	}
	return b.String(), n
}

// span is one field of a line: [start, end) in the line's text.
type span struct{ start, end int }

// fieldSpans splits a pg_hba.conf line into its fields the way the
// server's tokenizer does: blanks separate fields, a comma continues a
// field across blanks, double quotes protect both, and an unquoted #
// starts a comment.
func fieldSpans(line string) []span {
	var out []span
	i := 0
	for i < len(line) {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r') {
			i++
		}
		if i >= len(line) || line[i] == '#' {
			break
		}
		start := i
		inQuote, lastComma := false, false
		for i < len(line) {
			c := line[i]
			if !inQuote && (c == ' ' || c == '\t' || c == '\r') {
				if !lastComma {
					break
				}
				i++
				continue
			}
			if !inQuote && c == '#' {
				break
			}
			if c == '"' {
				inQuote = !inQuote
			}
			lastComma = !inQuote && c == ','
			i++
		}
		end := i
		for end > start && (line[end-1] == ' ' || line[end-1] == '\t') {
			end--
		}
		out = append(out, span{start, end})
	}
	return out
}

// optionValid reports whether an authentication option still belongs on
// a line whose method became method (hba.c: each option names the methods
// that take it).
func optionValid(opt, typ, method string) bool {
	name, _, _ := strings.Cut(opt, "=")
	switch name {
	case "clientcert":
		return typ == hba.HostSSL && method != "reject" && (method != "cert" || strings.HasSuffix(opt, "=verify-full"))
	case "map":
		return method == "peer" || method == "cert" || method == "ident"
	}
	return false
}

// rewriteLine applies w to one logical line. ok is false when the line
// cannot be rewritten (too few fields for its type).
func rewriteLine(text string, w *lineWant) (string, bool) {
	sp := fieldSpans(text)
	if len(sp) < 4 {
		return text, false
	}
	field := func(i int) string { return text[sp[i].start:sp[i].end] }
	typ := field(0)
	methodAt := 3
	if typ != hba.Local {
		if len(sp) < 5 {
			return text, false
		}
		methodAt = 4
		addr := strings.Trim(field(3), `"`)
		if !strings.Contains(addr, "/") {
			if _, err := netip.ParseAddr(addr); err == nil {
				methodAt = 5 // address and netmask in two fields
			}
		}
	}
	if len(sp) <= methodAt {
		return text, false
	}
	newTyp, method := typ, field(methodAt)
	if w.typ != "" && typeRank[w.typ] > typeRank[typ] && typ != hba.Local {
		newTyp = w.typ
	}
	methodChanged := w.method != "" && w.method != method && methodRank[w.method] > methodRank[method]
	if methodChanged {
		method = w.method
	}
	repl := map[int]string{}
	if newTyp != typ {
		repl[0] = newTyp
	}
	if len(w.users) > 0 {
		repl[2] = strings.Join(w.users, ",")
	}
	if methodChanged {
		repl[methodAt] = method
	}
	drop := map[int]bool{}
	if methodChanged {
		for i := methodAt + 1; i < len(sp); i++ {
			if !optionValid(field(i), newTyp, method) {
				drop[i] = true
			}
		}
	}
	// Rebuild from the end so earlier spans stay valid; dropped options
	// take the blanks before them along.
	out := text
	for i := len(sp) - 1; i >= 0; i-- {
		switch {
		case drop[i]:
			start := sp[i].start
			for start > 0 && (out[start-1] == ' ' || out[start-1] == '\t') {
				start--
			}
			out = out[:start] + out[sp[i].end:]
		case repl[i] != "":
			out = out[:sp[i].start] + repl[i] + out[sp[i].end:]
		}
	}
	return out, true
}

// planHBAFile builds the step for one file.
func planHBAFile(s *snapshot.Snapshot, fw *fileWant) (*built, []plan.Held) {
	holdAll := func(why string) []plan.Held {
		var h []plan.Held
		for _, it := range fw.items {
			h = append(h, plan.Held{FindingRef: it.ref(), Why: why})
		}
		return h
	}
	if fw.path == "" {
		return nil, holdAll("the path of pg_hba.conf is not known")
	}
	data, err := readHBA(fw.path)
	if err != nil {
		return remoteHBAStep(s, fw, err), nil
	}
	phys := splitPhys(string(data))
	rw := &plan.HBARewrite{Path: fw.path}
	var b strings.Builder
	texts := map[string]string{}
	var breaks []string
	hostssl := false
	var held []plan.Held
	seenAdded := map[string]bool{}
	inserted := map[string]string{} // asked line -> the line written
	for i := 0; i < len(phys); {
		text, n := logical(phys, i)
		w := fw.lines[i+1]
		if w == nil {
			for j := 0; j < n; j++ {
				b.WriteString(phys[i+j].text + phys[i+j].eol)
			}
			i += n
			continue
		}
		delete(fw.lines, i+1)
		if why := staleLine(s, fw.path, i+1, text); why != "" {
			for _, it := range w.items {
				held = append(held, plan.Held{FindingRef: it.ref(), Why: why})
			}
			for j := 0; j < n; j++ {
				b.WriteString(phys[i+j].text + phys[i+j].eol)
			}
			i += n
			continue
		}
		eol := phys[i+n-1].eol
		if eol == "" {
			eol = "\n"
		}
		for _, asked := range w.before {
			l := composeInserted(asked, w)
			inserted[asked] = l
			if seenAdded[l] {
				continue
			}
			seenAdded[l] = true
			b.WriteString(l + eol)
			rw.Lines = append(rw.Lines, plan.LineChange{New: hba.MaskLine(l), Rules: rulesAsking(w.items, func(e *remedy.HBAEdit) bool { return contains(e.Before, asked) })})
			if strings.HasPrefix(l, hba.HostSSL+" ") {
				hostssl = true
			}
		}
		var repl string
		changed := false
		if w.del {
			changed = true
		} else if nt, ok := rewriteLine(text, w); !ok {
			for _, it := range w.items {
				held = append(held, plan.Held{FindingRef: it.ref(), Why: fmt.Sprintf("%s:%d could not be read as a rule", textsafe.String(fw.path), i+1)})
			}
		} else if nt != text {
			repl, changed = nt, true
		}
		if !changed {
			for j := 0; j < n; j++ {
				b.WriteString(phys[i+j].text + phys[i+j].eol)
			}
		} else {
			if !w.del {
				b.WriteString(repl + eol)
			}
			lc := plan.LineChange{Line: i + 1, Old: hba.MaskLine(strings.TrimSpace(text)), New: hba.MaskLine(strings.TrimSpace(repl)), Rules: changedRules(w)}
			rw.Lines = append(rw.Lines, lc)
			for _, it := range w.items {
				texts[it.f.Key()] = lineText(fw.path, lc)
			}
			if !w.del {
				oldF, newF := fieldSpans(text), fieldSpans(repl)
				if text[oldF[0].start:oldF[0].end] != hba.HostSSL && repl[newF[0].start:newF[0].end] == hba.HostSSL {
					hostssl = true
					breaks = append(breaks, fmt.Sprintf("clients connecting without TLS over %s:%d (%s) will be refused", textsafe.String(fw.path), i+1, textsafe.String(lc.Old)))
				}
				breaks = append(breaks, methodBreaks(s, text, repl, fw.path, i+1)...)
			}
		}
		i += n
	}
	// Edits of lines the file no longer has.
	var missing []int
	for l := range fw.lines {
		missing = append(missing, l)
	}
	sort.Ints(missing)
	for _, l := range missing {
		for _, it := range fw.lines[l].items {
			held = append(held, plan.Held{FindingRef: it.ref(), Why: fmt.Sprintf("%s has no line %d any more: audit again", textsafe.String(fw.path), l)})
		}
	}
	if len(fw.append) > 0 {
		content := b.String()
		if content != "" && !strings.HasSuffix(content, "\n") {
			b.WriteString("\n")
		}
		for _, l := range fw.append {
			if seenAdded[l] {
				continue
			}
			seenAdded[l] = true
			b.WriteString(l + "\n")
			rw.Lines = append(rw.Lines, plan.LineChange{New: hba.MaskLine(l), Rules: fw.appendRules})
		}
	}
	for _, it := range fw.items {
		if it.c.HBA.Line == 0 {
			texts[it.f.Key()] = fmt.Sprintf("append to %s:\n%s", textsafe.String(fw.path), strings.Join(it.c.HBA.Append, "\n"))
		} else if len(it.c.HBA.Before) > 0 {
			var ls []string
			for _, l := range it.c.HBA.Before {
				if w, ok := inserted[l]; ok {
					ls = append(ls, hba.MaskLine(w))
				}
			}
			if len(ls) > 0 {
				texts[it.f.Key()] = fmt.Sprintf("insert before %s:%d:\n%s", textsafe.String(fw.path), it.c.HBA.Line, strings.Join(ls, "\n"))
			}
		}
		if it.c.Breaks != "" {
			breaks = appendOnce(breaks, it.c.Breaks)
		}
	}
	if len(rw.Lines) == 0 {
		return nil, held
	}
	rw.Content = b.String()
	// Never propose a file the server would refuse to load.
	parsed := hba.Parse(fw.path, []byte(rw.Content), hba.Options{Version: s.MajorVersion(), ReadFile: readHBA})
	if len(parsed.Errors) > 0 {
		e := parsed.Errors[0]
		return nil, append(held, holdAll(fmt.Sprintf("the rewritten %s would not load: %s", textsafe.String(fw.path), e.Error()))...)
	}
	step := plan.Step{Kind: plan.KindHBA, Apply: plan.ApplyReload, HBA: rw, Breaks: breaks,
		Summary: hbaSummary(fw.path, rw.Lines, "")}
	var closes []plan.FindingRef
	seen := map[string]bool{}
	heldKeys := map[string]bool{}
	for _, h := range held {
		heldKeys[h.Rule+"\x00"+h.Object] = true
	}
	for _, it := range fw.items {
		k := it.f.Key()
		if seen[k] || heldKeys[k] {
			continue
		}
		seen[k] = true
		closes = append(closes, it.ref())
	}
	step.Closes = closes
	out := &built{step: step, key: "hba:" + fw.path, texts: texts, order: phaseHBA}
	if hostssl && !sslOn(s) {
		// hostssl lines match nothing until ssl is on: the settings
		// step that turns it on must have reloaded first.
		out.after = append(out.after, "settings:reload")
		step.Breaks = append(step.Breaks, "hostssl lines need ssl = on: every client of the rewritten lines is refused until it is")
		out.step = step
	}
	return out, held
}

// composeInserted applies the type and method asked of a line to an
// accepting line inserted before it (AUTH-08's loopback copy of that
// line), so that the copy is not weaker than the line it came from.
func composeInserted(l string, w *lineWant) string {
	if w.typ == "" && w.method == "" {
		return l
	}
	sp := fieldSpans(l)
	if len(sp) < 4 || strings.HasSuffix(l, " reject") {
		return l
	}
	nl, ok := rewriteLine(l, &lineWant{typ: w.typ, method: w.method})
	if !ok {
		return l
	}
	return nl
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// changedRules are the rules behind a line's rewrite.
func changedRules(w *lineWant) []string {
	return rulesAsking(w.items, func(e *remedy.HBAEdit) bool {
		return e.Delete || e.Type != "" || e.Method != "" || len(e.Users) > 0
	})
}

func rulesAsking(items []item, asked func(*remedy.HBAEdit) bool) []string {
	var out []string
	for _, it := range items {
		if asked(it.c.HBA) {
			out = appendOnce(out, it.f.Rule)
		}
	}
	return out
}

// staleLine says why line n of the file is not the rule the audit saw
// ("" when it is, or when the snapshot does not know the line).
func staleLine(s *snapshot.Snapshot, path string, n int, text string) string {
	if s.HBA == nil {
		return ""
	}
	for i := range s.HBA.Rules {
		r := &s.HBA.Rules[i]
		if r.Line != n || r.File != path {
			continue
		}
		if strings.Join(strings.Fields(r.Text), " ") != strings.Join(strings.Fields(hba.MaskLine(strings.TrimSpace(text))), " ") {
			return fmt.Sprintf("%s:%d changed since the audit: audit again", textsafe.String(path), n)
		}
		return ""
	}
	return ""
}

func lineText(path string, lc plan.LineChange) string {
	if lc.New == "" {
		return fmt.Sprintf("remove %s:%d:\n%s", textsafe.String(path), lc.Line, textsafe.String(lc.Old))
	}
	return fmt.Sprintf("%s:%d becomes:\n%s\n(was: %s)", textsafe.String(path), lc.Line, textsafe.String(lc.New), textsafe.String(lc.Old))
}

func hbaSummary(path string, lines []plan.LineChange, note string) string {
	var changed, removed, added int
	var rules []string
	for _, l := range lines {
		switch {
		case l.Line == 0:
			added++
		case l.New == "":
			removed++
		default:
			changed++
		}
		for _, r := range l.Rules {
			rules = appendOnce(rules, r)
		}
	}
	sort.Strings(rules)
	var parts []string
	for _, p := range []struct {
		n    int
		what string
	}{{changed, "changed"}, {removed, "removed"}, {added, "added"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	sum := fmt.Sprintf("rewrite %s (lines: %s) for %s", textsafe.String(path), strings.Join(parts, ", "), strings.Join(rules, ", "))
	if note != "" {
		sum += "; " + note
	}
	return sum
}

// withoutHostSSL drops the hostssl part of the edits when the plan leaves
// ssl off (a filter left out TLS-01, or its certificate is missing): a
// hostssl line matches nothing then, and every TCP client of the line
// would be refused. An edit that asked for nothing else is held.
func withoutHostSSL(items []item) ([]item, []plan.Held) {
	var out []item
	var held []plan.Held
	for _, it := range items {
		e := it.c.HBA
		if e.Type != hba.HostSSL {
			out = append(out, it)
			continue
		}
		c := *e
		c.Type = ""
		if c.Method == "" && c.Address == "" && !c.Delete && len(c.Before) == 0 && len(c.Append) == 0 && len(c.Users) == 0 {
			held = append(held, plan.Held{FindingRef: it.ref(), Why: "hostssl lines need ssl = on, and this plan leaves ssl off (plan TLS-01, with its certificate, too)"})
			continue
		}
		it.c.HBA = &c
		out = append(out, it)
	}
	return out, held
}

func sslOn(s *snapshot.Snapshot) bool {
	v, ok := s.Setting("ssl")
	return ok && isTrue(v.Value)
}

// isTrue reads a boolean setting the way the server does (on, true, yes,
// 1 and their prefixes); an unreadable value is not on.
func isTrue(v string) bool {
	on, ok := guc.ParseBool(v)
	return ok && on
}

// methodBreaks names the clients a method change refuses: roles whose
// stored password cannot answer scram-sha-256, and roles with none.
func methodBreaks(s *snapshot.Snapshot, oldText, newText, path string, line int) []string {
	p := hba.Parse(path, []byte(newText+"\n"), hba.Options{ReadFile: func(string) ([]byte, error) { return nil, fmt.Errorf("no includes here") }})
	o := hba.Parse(path, []byte(oldText+"\n"), hba.Options{ReadFile: func(string) ([]byte, error) { return nil, fmt.Errorf("no includes here") }})
	if len(p.Rules) != 1 || len(o.Rules) != 1 || p.Rules[0].Method == o.Rules[0].Method {
		return nil
	}
	r := &p.Rules[0]
	var md5, none []string
	for _, role := range s.Roles {
		if !role.CanLogin || !lineMatchesRole(s, r, role.Name) {
			continue
		}
		switch role.Password {
		case snapshot.PasswordMD5, snapshot.PasswordPlaintext:
			md5 = append(md5, quote.Ident(role.Name))
		case snapshot.PasswordNone:
			none = append(none, quote.Ident(role.Name))
		}
	}
	loc := fmt.Sprintf("%s:%d", textsafe.String(path), line)
	var out []string
	switch r.Method {
	case "scram-sha-256":
		if len(md5) > 0 {
			out = append(out, fmt.Sprintf("clients of roles %s (md5 passwords) will fail over %s until their passwords are reset with password_encryption = scram-sha-256", strings.Join(md5, ", "), loc))
		}
		if len(none) > 0 && o.Rules[0].Method == "trust" {
			out = append(out, fmt.Sprintf("roles %s have no password: they cannot log in over %s until they get one", strings.Join(none, ", "), loc))
		}
	case "peer":
		out = append(out, fmt.Sprintf("over %s only OS users named like their role (or mapped) get in", loc))
	}
	return out
}

// lineMatchesRole: the line's user field can match role (keywords all
// and +group through the memberships the snapshot holds; from 16 a
// leading slash, quoted or not, is a regular expression, and one our
// engine cannot decide counts as matching: the note is a warning).
func lineMatchesRole(s *snapshot.Snapshot, r *hba.Rule, role string) bool {
	for _, t := range r.Users {
		switch {
		case strings.HasPrefix(t.Value, "/") && s.MajorVersion() >= 16:
			if _, m, decided := hba.RegexMatch(t, s.MajorVersion(), role); m || !decided {
				return true
			}
		case t.IsKeyword("all"):
			return true
		case !t.Quoted && strings.HasPrefix(t.Value, "+"):
			if isMember(s, role, t.Value[1:]) {
				return true
			}
		case t.Value == role:
			return true
		}
	}
	return false
}

func isMember(s *snapshot.Snapshot, role, group string) bool {
	seen := map[string]bool{role: true}
	queue := []string{role}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == group {
			return true
		}
		for _, m := range s.Memberships {
			if m.Member == cur && !seen[m.Role] {
				seen[m.Role] = true
				queue = append(queue, m.Role)
			}
		}
	}
	return false
}

// remoteHBAStep is the step when the file cannot be read here (a remote
// audit through pg_hba_file_rules): the new lines come from the rules the
// server reported, and the engine, which cannot read the file either,
// refuses to apply it; an operator on the database host can.
func remoteHBAStep(s *snapshot.Snapshot, fw *fileWant, readErr error) *built {
	rw := &plan.HBARewrite{Path: fw.path}
	texts := map[string]string{}
	var lines []int
	for l := range fw.lines {
		lines = append(lines, l)
	}
	sort.Ints(lines)
	for _, l := range lines {
		w := fw.lines[l]
		var old string
		if s.HBA != nil {
			for i := range s.HBA.Rules {
				if r := &s.HBA.Rules[i]; r.Line == l && (r.File == fw.path || r.File == "") {
					old = r.Text
				}
			}
		}
		for _, b := range w.before {
			rw.Lines = append(rw.Lines, plan.LineChange{New: hba.MaskLine(b), Rules: w.rules})
		}
		if old == "" {
			continue
		}
		lc := plan.LineChange{Line: l, Old: old, Rules: changedRules(w)}
		if !w.del {
			nt, ok := rewriteLine(old, w)
			if !ok || nt == old {
				continue
			}
			lc.New = nt
		}
		rw.Lines = append(rw.Lines, lc)
		for _, it := range w.items {
			texts[it.f.Key()] = lineText(fw.path, lc)
		}
	}
	for _, l := range fw.append {
		rw.Lines = append(rw.Lines, plan.LineChange{New: l, Rules: fw.appendRules})
	}
	if len(rw.Lines) == 0 {
		return nil
	}
	var closes []plan.FindingRef
	seen := map[string]bool{}
	for _, it := range fw.items {
		if !seen[it.f.Key()] {
			seen[it.f.Key()] = true
			closes = append(closes, it.ref())
		}
	}
	note := fmt.Sprintf("the file could not be read here (%s): make these changes to it on the database host, then reload", textsafe.String(readErr.Error()))
	step := plan.Step{Kind: plan.KindHBA, Apply: plan.ApplyReload, HBA: rw, Closes: closes, Summary: hbaSummary(fw.path, rw.Lines, note)}
	return &built{step: step, key: "hba:" + fw.path, texts: texts, order: phaseHBA}
}
