// Package fleetreport renders what the fleet commands print: a server's
// drift between two scans (fleet diff) and the fleet's report over a
// period (fleet report), in text, JSON, HTML and Markdown.
//
// Both documents become one neutral shape first, a title, a few lines
// about it and a list of tables, which the three human formats render;
// JSON is the documents' own structs. Names and values come from the
// servers (role names, pg_hba.conf text, labels), so every human format
// escapes them: text through textsafe (no terminal controls), Markdown
// by escaping its syntax, HTML through html/template.
package fleetreport

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// Formats are the formats Write accepts.
var Formats = []string{"text", "json", "html", "markdown"}

// CheckFormat refuses an unknown format by name (md is markdown).
func CheckFormat(f string) (string, error) {
	switch f {
	case "text", "json", "html", "markdown":
		return f, nil
	case "md":
		return "markdown", nil
	}
	return "", fmt.Errorf("unknown --format %q (text, json, html or markdown)", f)
}

// doc is a document as the human formats see it.
type doc struct {
	Title  string
	Meta   []string
	Tables []table
}

type table struct {
	Title string
	// Note is a sentence under the title (what the table means).
	Note  string
	Empty string // shown when there are no rows
	Head  []string
	Rows  [][]string
}

func write(w io.Writer, format string, d doc, v any) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "html":
		return htmlTmpl.Execute(w, clean(d))
	case "markdown", "md":
		_, err := io.WriteString(w, markdown(d))
		return err
	case "text":
		_, err := io.WriteString(w, text(d))
		return err
	}
	return fmt.Errorf("unknown format %q", format)
}

func text(d doc) string {
	var b strings.Builder
	b.WriteString(textsafe.String(d.Title) + "\n")
	for _, m := range d.Meta {
		b.WriteString(textsafe.String(m) + "\n")
	}
	for _, t := range d.Tables {
		fmt.Fprintf(&b, "\n%s (%d)\n", textsafe.String(t.Title), len(t.Rows))
		if t.Note != "" {
			b.WriteString("  " + textsafe.String(t.Note) + "\n")
		}
		if len(t.Rows) == 0 {
			b.WriteString("  " + textsafe.String(t.Empty) + "\n")
			continue
		}
		rows := append([][]string{t.Head}, t.Rows...)
		width := make([]int, len(t.Head))
		for _, r := range rows {
			for i, c := range r {
				width[i] = max(width[i], utf8.RuneCountInString(textsafe.String(c)))
			}
		}
		for _, r := range rows {
			var line strings.Builder
			line.WriteString(" ")
			for i, c := range r {
				c = textsafe.String(c)
				line.WriteString(" " + c)
				if i < len(r)-1 {
					line.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)))
				}
			}
			b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
		}
	}
	return b.String()
}

// mdCell escapes a value for a Markdown table cell: its syntax
// characters, HTML and the cell separator; a newline would end the row.
func mdCell(s string) string {
	s = textsafe.String(s)
	s = strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
	return strings.NewReplacer("&", "&amp;", "\\", "\\\\", "*", "\\*", "_", "\\_", "`", "\\`", "<", "&lt;", ">", "&gt;",
		"[", "\\[", "]", "\\]", "|", "&#124;", "#", "\\#", "~", "\\~").Replace(s)
}

func markdown(d doc) string {
	var b strings.Builder
	b.WriteString("# " + mdCell(d.Title) + "\n\n")
	for _, m := range d.Meta {
		b.WriteString("- " + mdCell(m) + "\n")
	}
	for _, t := range d.Tables {
		fmt.Fprintf(&b, "\n## %s (%d)\n\n", mdCell(t.Title), len(t.Rows))
		if t.Note != "" {
			b.WriteString(mdCell(t.Note) + "\n\n")
		}
		if len(t.Rows) == 0 {
			b.WriteString("_" + mdCell(t.Empty) + "_\n")
			continue
		}
		cells := func(r []string) {
			b.WriteString("|")
			for _, c := range r {
				b.WriteString(" " + mdCell(c) + " |")
			}
			b.WriteString("\n")
		}
		cells(t.Head)
		b.WriteString("|" + strings.Repeat(" --- |", len(t.Head)) + "\n")
		for _, r := range t.Rows {
			cells(r)
		}
	}
	return b.String()
}

// Short cells (rule ids, times, severities, counts) never wrap: "AUTH-01"
// broken at its hyphen is no longer the id one greps for.
var htmlTmpl = template.Must(template.New("fleet").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td { font-family: ui-monospace, monospace; font-size: 0.9em; white-space: pre-wrap; }
td.id { white-space: nowrap; }
.note, .empty { color: #555; }
</style></head>
<body>
<h1>{{.Title}}</h1>
{{if .Meta}}<ul>{{range .Meta}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{range .Tables}}<section>
<h2>{{.Title}} ({{len .Rows}})</h2>
{{if .Note}}<p class="note">{{.Note}}</p>{{end}}
{{if .Rows}}<table>
<tr>{{range .Head}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range .}}<td{{if lt (len .) 25}} class="id"{{end}}>{{.}}</td>{{end}}</tr>
{{end}}</table>{{else}}<p class="empty">{{.Empty}}</p>{{end}}
</section>
{{end}}</body></html>
`))

// clean escapes terminal controls and bidi overrides in every string
// (html/template escapes HTML, not these).
func clean(d doc) doc {
	out := doc{Title: textsafe.String(d.Title)}
	for _, m := range d.Meta {
		out.Meta = append(out.Meta, textsafe.String(m))
	}
	for _, t := range d.Tables {
		c := table{Title: textsafe.String(t.Title), Note: textsafe.String(t.Note), Empty: textsafe.String(t.Empty)}
		for _, h := range t.Head {
			c.Head = append(c.Head, textsafe.String(h))
		}
		for _, r := range t.Rows {
			var row []string
			for _, v := range r {
				row = append(row, textsafe.String(v))
			}
			c.Rows = append(c.Rows, row)
		}
		out.Tables = append(out.Tables, c)
	}
	return out
}
