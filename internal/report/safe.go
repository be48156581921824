package report

import (
	"reflect"

	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// Names, evidence and log fields in a report come from whoever created the
// objects (or, for logs, from any client that tried to log in), so a raw
// ESC or bidi override in them could act on the reader's terminal. The
// human-readable writers (text, Markdown, HTML) render safeCopy(r), a deep
// copy in which every string has been escaped: a field added to Report or
// Finding later is escaped without anyone having to remember it. The
// machine formats (JSON, SARIF, JUnit) keep the values as they are; their
// encoders escape controls in their own syntax.

// multiLine names the fields that are meant to span lines: their newlines
// and tabs are kept (the text writer indents continuation lines). Every
// other string is one line and gets its newlines escaped too, so a name
// cannot fake a line of the report.
var multiLine = map[string]bool{"Evidence": true, "Expected": true, "Reason": true}

// codeFields are meant to be copied and run: backslashes are kept.
var codeFields = map[string]bool{"Fix": true}

func safeCopy(r *Report) *Report {
	if r == nil {
		return nil
	}
	v := cleanValue(reflect.ValueOf(r).Elem(), textsafe.String)
	out := v.Interface().(Report)
	return &out
}

// cleanValue returns a copy of v with every string passed through esc
// (the escaping chosen for the field that holds it).
func cleanValue(v reflect.Value, esc func(string) string) reflect.Value {
	switch v.Kind() {
	case reflect.String:
		out := reflect.New(v.Type()).Elem()
		out.SetString(esc(v.String()))
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(cleanValue(v.Elem(), esc))
		return out
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			out.Index(i).Set(cleanValue(v.Index(i), esc))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		it := v.MapRange()
		for it.Next() {
			out.SetMapIndex(cleanValue(it.Key(), textsafe.String), cleanValue(it.Value(), esc))
		}
		return out
	case reflect.Struct:
		// Copy first so unexported state (time.Time's) comes along, then
		// replace each exported field by its cleaned copy.
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			fe := textsafe.String
			switch {
			case codeFields[f.Name]:
				fe = textsafe.Code
			case multiLine[f.Name]:
				fe = textsafe.Text
			}
			out.Field(i).Set(cleanValue(v.Field(i), fe))
		}
		return out
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type()).Elem()
		out.Set(cleanValue(v.Elem(), esc))
		return out
	}
	return v
}
