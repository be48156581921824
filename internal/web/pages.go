package web

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pgaegis/pgaegis/internal/drift"
	"github.com/pgaegis/pgaegis/internal/fleetreport"
	"github.com/pgaegis/pgaegis/internal/inventory"
	"github.com/pgaegis/pgaegis/internal/report"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticRoot embed.FS

var staticFS, _ = fs.Sub(staticRoot, "static")

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"day": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02")
	},
	"sev":    sevName,
	"labels": inventory.FormatLabels,
	"spark":  sparkPoints,
	"esc":    url.PathEscape,
	"delta": func(d int) string {
		if d > 0 {
			return fmt.Sprintf("▲ %d", d)
		}
		if d < 0 {
			return fmt.Sprintf("▼ %d", -d)
		}
		return "="
	},
}

var pages = map[string]*template.Template{}

func init() {
	for _, p := range []string{"login", "fleet", "server", "history", "certs", "tokens"} {
		pages[p] = template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+p+".html"))
	}
}

func (s *Server) render(w http.ResponseWriter, code int, page string, data map[string]any) {
	var b strings.Builder
	if err := pages[page].ExecuteTemplate(&b, "layout", data); err != nil {
		s.log.Printf("render %s: %v", page, err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

// view is the data every logged-in page gets.
func (s *Server) view(r *http.Request, title string) map[string]any {
	p := who(r)
	v := map[string]any{"Title": title, "User": p.name, "Role": p.role, "Operator": p.operator()}
	if p.sess != nil {
		v["CSRF"] = p.sess.csrf
	}
	return v
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	if errors.Is(err, store.ErrNotFound) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	s.log.Printf("page: %v", err)
	http.Error(w, "store unavailable", http.StatusServiceUnavailable)
}

// sparkPoints draws scores (0-100, oldest first) as an SVG polyline in a
// 100×20 box.
func sparkPoints(scores []int) string {
	if len(scores) == 0 {
		return ""
	}
	if len(scores) == 1 {
		scores = []int{scores[0], scores[0]}
	}
	var b []string
	for i, sc := range scores {
		x := float64(i) * 100 / float64(len(scores)-1)
		b = append(b, fmt.Sprintf("%.1f,%.1f", x, 19-float64(sc)*18/100))
	}
	return strings.Join(b, " ")
}

func (s *Server) fleetPage(w http.ResponseWriter, r *http.Request) {
	f, err := s.fleet(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	rows := append([]*serverRow(nil), f.rows...)
	// Worst first: lowest score, servers never reached before them all.
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.HasScore != b.HasScore {
			return !a.HasScore
		}
		if a.Score != b.Score {
			return a.Score < b.Score
		}
		return a.Name < b.Name
	})
	q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	if q != "" {
		kept := rows[:0]
		for _, row := range rows {
			if strings.Contains(strings.ToLower(row.Name+" "+inventory.FormatLabels(row.Labels)), q) {
				kept = append(kept, row)
			}
		}
		rows = kept
	}
	// 100 rows a page: a thousand-server table is a long page to render
	// and to read; worst first, the first page is the one that matters.
	const perPage = 100
	pageN, _ := strconv.Atoi(r.URL.Query().Get("page"))
	pages := max(1, (len(rows)+perPage-1)/perPage)
	pageN = min(max(pageN, 1), pages)
	matched := len(rows)
	rows = rows[(pageN-1)*perPage : min(len(rows), pageN*perPage)]
	var unreached, worse int
	for _, row := range f.rows {
		if row.Latest != nil && row.Latest.Status != store.OK {
			unreached++
		}
		if row.Drift != nil && len(row.Drift.New) > 0 {
			worse++
		}
	}
	v := s.view(r, "Fleet")
	v["Rows"], v["Q"], v["At"], v["Total"], v["Unreached"], v["Worse"] = rows, r.URL.Query().Get("q"), f.at, len(f.rows), unreached, worse
	v["Page"], v["Pages"], v["Matched"] = pageN, pages, matched
	if pageN > 1 {
		v["Prev"] = pageLink(r.URL.Query(), pageN-1)
	}
	if pageN < pages {
		v["Next"] = pageLink(r.URL.Query(), pageN+1)
	}
	s.render(w, http.StatusOK, "fleet", v)
}

func pageLink(q url.Values, n int) string {
	c := url.Values{}
	for k, v := range q {
		c[k] = v
	}
	c.Set("page", strconv.Itoa(n))
	return "/?" + c.Encode()
}

// filter is the server page's finding filter, from the query string.
type filter struct {
	Severity, Area, Status, Q string
}

func (f filter) match(x rules.Finding) bool {
	if f.Severity != "" && sevName(x.Severity) != f.Severity {
		return false
	}
	if f.Area != "" && x.Area != f.Area {
		return false
	}
	if f.Status != "all" && string(x.Status) != f.Status {
		return false
	}
	if f.Q != "" {
		hay := strings.ToLower(strings.Join(append([]string{x.Rule, x.Title, x.Object, x.Location, x.Evidence}, x.Objects...), "\n"))
		if !strings.Contains(hay, strings.ToLower(f.Q)) {
			return false
		}
	}
	return true
}

// areaSection is one area's rule groups, as the text report lays them out.
type areaSection struct {
	Area   string
	Count  int
	Worst  rules.Severity
	Groups []*report.RuleGroup
}

func (s *Server) serverPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	f, err := s.fleet(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	row := f.byName[name]
	if row == nil {
		s.fail(w, store.ErrNotFound)
		return
	}
	qs := r.URL.Query()
	flt := filter{Severity: qs.Get("severity"), Area: qs.Get("area"), Status: qs.Get("status"), Q: strings.TrimSpace(qs.Get("q"))}
	if flt.Status == "" {
		flt.Status = string(rules.Fail)
	}
	v := s.view(r, name)
	v["Row"], v["Filter"] = row, flt
	v["Severities"] = []string{"critical", "high", "medium", "low", "info"}
	v["Statuses"] = []string{"fail", "waived", "not_checked", "pass", "all"}
	since := map[drift.Key]time.Time{}
	if row.LatestOK != nil {
		rec, err := s.st.LoadScan(r.Context(), row.LatestOK.ID)
		if err != nil {
			s.fail(w, err)
			return
		}
		frows, err := s.st.Findings(r.Context(), row.LatestOK.ID)
		if err != nil {
			s.fail(w, err)
			return
		}
		for _, fr := range frows {
			if !fr.OpenSince.IsZero() {
				since[drift.Key{Rule: fr.Rule, Object: fr.Object}] = fr.OpenSince
			}
		}
		areas := map[string]bool{}
		var shown []rules.Finding
		for _, x := range rec.Findings {
			areas[x.Area] = true
			if flt.match(x) {
				shown = append(shown, x)
			}
		}
		report.SortFindings(shown)
		v["Sections"], v["Shown"], v["Total"] = sections(shown), len(shown), len(rec.Findings)
		// The rest of fleet diff's drift (settings, roles, grants, pg_hba.conf
		// lines, certificate) against the previous reached scan.
		if row.Drift != nil && row.Drift.To.ID == rec.ID {
			prev, err := s.st.LoadScan(r.Context(), row.Drift.From.ID)
			if err != nil {
				s.fail(w, err)
				return
			}
			d := drift.Compare(prev, rec)
			v["Changes"], v["Unknown"] = fleetreport.DiffTables(d), strings.Join(d.Unknown, ", ")
		}
		var al []string
		for a := range areas {
			al = append(al, a)
		}
		sort.Strings(al)
		v["Areas"] = al
	}
	v["Since"] = func(rule, object string) time.Time { return since[drift.Key{Rule: rule, Object: object}] }
	scans, err := s.st.Scans(r.Context(), name, s.now().AddDate(0, 0, -90), time.Time{})
	if err != nil {
		s.fail(w, err)
		return
	}
	if len(scans) > 20 {
		scans = scans[len(scans)-20:]
	}
	for i, j := 0, len(scans)-1; i < j; i, j = i+1, j-1 {
		scans[i], scans[j] = scans[j], scans[i]
	}
	v["Scans"] = scans
	s.render(w, http.StatusOK, "server", v)
}

// sections groups findings (in SortFindings order) by area, areas with
// the worst finding first, then by rule within each.
func sections(fs []rules.Finding) []areaSection {
	idx := map[string]int{}
	var out []areaSection
	var per [][]rules.Finding
	for _, f := range fs {
		i, ok := idx[f.Area]
		if !ok {
			i = len(out)
			idx[f.Area] = i
			out = append(out, areaSection{Area: f.Area, Worst: f.Severity})
			per = append(per, nil)
		}
		per[i] = append(per[i], f)
		out[i].Count++
		if f.Severity > out[i].Worst {
			out[i].Worst = f.Severity
		}
	}
	for i := range out {
		out[i].Groups = report.GroupByRule(per[i])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Worst > out[j].Worst })
	return out
}

func (s *Server) historyPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	rule, object := r.URL.Query().Get("rule"), r.URL.Query().Get("object")
	if rule == "" {
		http.Error(w, "which finding? ?rule=RULE&object=OBJECT", http.StatusBadRequest)
		return
	}
	h, err := s.st.FindingHistory(r.Context(), name, rule, object)
	if err != nil {
		s.fail(w, err)
		return
	}
	pts := h.Points
	for i, j := 0, len(pts)-1; i < j; i, j = i+1, j-1 {
		pts[i], pts[j] = pts[j], pts[i]
	}
	failing := 0
	for _, p := range pts {
		if p.Status == rules.Fail {
			failing++
		}
	}
	v := s.view(r, rule+" on "+name)
	v["H"], v["Points"], v["Failing"], v["Server"] = h, pts, failing, name
	s.render(w, http.StatusOK, "history", v)
}

func (s *Server) certsPage(w http.ResponseWriter, r *http.Request) {
	f, err := s.fleet(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	var certs []*certInfo
	var none []string
	for _, row := range f.rows {
		if row.Cert != nil {
			certs = append(certs, row.Cert)
		} else if row.LatestOK != nil {
			none = append(none, row.Name)
		}
	}
	sort.SliceStable(certs, func(i, j int) bool { return certs[i].NotAfter.Before(certs[j].NotAfter) })
	v := s.view(r, "Certificates")
	v["Certs"], v["None"] = certs, none
	s.render(w, http.StatusOK, "certs", v)
}

func (s *Server) tokensPage(w http.ResponseWriter, r *http.Request) {
	ts, err := s.st.ListTokens(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	v := s.view(r, "Tokens")
	v["Tokens"] = ts
	s.render(w, http.StatusOK, "tokens", v)
}

// revokePost is an operator's action: revoke a token (sessions made with
// it end within the recheck period).
func (s *Server) revokePost(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, err := s.st.RevokeToken(r.Context(), id, s.now())
	if err != nil {
		s.fail(w, err)
		return
	}
	// The revoked token's cached lookup and its sessions end now, not
	// at the next recheck.
	s.auth.mu.Lock()
	delete(s.auth.tokens, t.Hash)
	for sid, sess := range s.auth.sessions {
		if sess.tokenID == t.ID {
			delete(s.auth.sessions, sid)
		}
	}
	s.auth.mu.Unlock()
	s.log.Printf("token %s revoked by %s", id, who(r).name)
	http.Redirect(w, r, "/tokens", http.StatusSeeOther)
}
