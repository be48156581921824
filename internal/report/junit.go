package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/pgaegis/pgaegis/internal/rules"
)

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// WriteJUnit writes one test case per finding, one suite per area: failures
// at or above the fail-on threshold are failures, waived and not-checked
// findings are skipped, the rest pass. CI dashboards show them as tests.
func WriteJUnit(w io.Writer, r *Report) error {
	failOn, _ := rules.ParseSeverity(r.Summary.FailOn)
	doc := junitSuites{Name: "pgaegis"}
	byArea := map[string]*junitSuite{}
	var order []string
	for _, f := range r.Findings {
		s := byArea[f.Area]
		if s == nil {
			s = &junitSuite{Name: "pgaegis." + f.Area}
			byArea[f.Area] = s
			order = append(order, f.Area)
		}
		name := f.Rule
		if f.Object != "" {
			name += " " + f.Object
		}
		c := junitCase{Name: name, ClassName: "pgaegis." + f.Area + "." + f.Rule}
		switch {
		case f.Status == rules.Fail && f.Severity >= failOn:
			c.Failure = &junitFailure{Message: f.Title, Type: f.Severity.String(), Body: junitBody(f)}
			s.Failures++
		case f.Status == rules.Fail:
			// Below the threshold: reported, not failing the build.
			c.Skipped = &junitSkipped{Message: fmt.Sprintf("%s finding below --fail-on %s: %s", f.Severity, r.Summary.FailOn, f.Evidence)}
			s.Skipped++
		case f.Status == rules.Waived:
			c.Skipped = &junitSkipped{Message: "waived: " + f.Waiver.Reason + " (until " + f.Waiver.Expires + ")"}
			s.Skipped++
		case f.Status == rules.NotChecked:
			c.Skipped = &junitSkipped{Message: "not checked: " + f.Reason}
			s.Skipped++
		}
		s.Tests++
		s.Cases = append(s.Cases, c)
	}
	for _, a := range order {
		s := byArea[a]
		doc.Suites = append(doc.Suites, *s)
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Skipped += s.Skipped
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func junitBody(f rules.Finding) string {
	var b strings.Builder
	// CI shows the body as is: the objects and the fix of a finding that
	// stands for many are clipped as in the text report (JSON lists all).
	for _, kv := range [][2]string{{"object", f.Object}, {"objects", objectsHint(f, false, " (the JSON report lists every one)")}, {"location", f.Location}, {"evidence", f.Evidence}, {"expected", f.Expected}, {"fix", clipFix(f.Fix, false)}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, "%s: %s\n", kv[0], kv[1])
		}
	}
	return b.String()
}
