package guc

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Unit multipliers, to bytes and to microseconds: the units the server
// accepts in integer and real settings (case-sensitive, as there).
var memoryUnits = map[string]float64{"B": 1, "kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
var timeUnits = map[string]float64{"us": 1, "ms": 1e3, "s": 1e6, "min": 60e6, "h": 3600e6, "d": 86400e6}

// baseUnit splits a pg_settings unit ("8kB", "16MB", "ms") into its
// multiplier in bytes or microseconds and whether it is a memory unit.
func baseUnit(unit string) (mult float64, memory, ok bool) {
	if unit == "" {
		return 1, false, true
	}
	n := 1.0
	i := 0
	for i < len(unit) && unit[i] >= '0' && unit[i] <= '9' {
		i++
	}
	if i > 0 {
		v, _ := strconv.Atoi(unit[:i])
		n = float64(v)
	}
	if m, ok := memoryUnits[unit[i:]]; ok {
		return n * m, true, true
	}
	if m, ok := timeUnits[unit[i:]]; ok {
		return n * m, false, true
	}
	return 0, false, false
}

func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// ParseNumber reads an integer or real setting the way the server's
// parse_int and parse_real do: strtol base 0 (or strtod for a fraction or
// exponent), blanks, an optional unit that the parameter's unit converts
// from, blanks. The result is in the parameter's unit, rounded to an
// integer for integer parameters; ranges are not checked here.
func ParseNumber(p Param, value string) (float64, error) {
	s := value
	i := 0
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	numStart := i
	var v float64
	// strtol first: it takes 0x hex and leading-0 octal.
	j := i
	if j < len(s) && (s[j] == '+' || s[j] == '-') {
		j++
	}
	digitsStart := j
	base := 10
	if p.VarType == "integer" && j+1 < len(s) && s[j] == '0' && (s[j+1] == 'x' || s[j+1] == 'X') && j+2 < len(s) && isHexDigit(s[j+2]) {
		base, j = 16, j+2
	} else if p.VarType == "integer" && j < len(s) && s[j] == '0' {
		base = 8
	}
	k := j
	for k < len(s) && digitIn(s[k], base) {
		k++
	}
	useReal := p.VarType == "real"
	if p.VarType == "integer" {
		if k == digitsStart {
			return 0, fmt.Errorf("%q is not a number", value)
		}
		if k < len(s) && (s[k] == '.' || s[k] == 'e' || s[k] == 'E') {
			useReal = true
		} else {
			n, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimPrefix(s[j:k], "+"), ""), base, 64)
			if err != nil && base != 8 {
				useReal = true // out of range for strtol: strtod takes it, then the range check refuses it
			} else if err != nil {
				return 0, fmt.Errorf("%q is not a number", value)
			}
			if s[numStart] == '-' {
				n = -n
			}
			v = float64(n)
			i = k
		}
	}
	if useReal {
		n, end, err := strtod(s[numStart:])
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", value)
		}
		v, i = n, numStart+end
	}
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	if i < len(s) {
		// A unit: letters up to a blank or the end.
		u := i
		for i < len(s) && !isBlank(s[i]) {
			i++
		}
		unit := s[u:i]
		for i < len(s) && isBlank(s[i]) {
			i++
		}
		if i < len(s) {
			return 0, fmt.Errorf("%q: text after the unit", value)
		}
		bm, memory, ok := baseUnit(p.Unit)
		if !ok || p.Unit == "" {
			return 0, fmt.Errorf("%q: parameter %s takes no unit", value, p.Name)
		}
		var m float64
		if memory {
			m, ok = memoryUnits[unit]
		} else {
			m, ok = timeUnits[unit]
		}
		if !ok {
			return 0, fmt.Errorf("%q: invalid unit %q for %s", value, unit, p.Name)
		}
		v = v * m / bm
	}
	if p.VarType == "integer" {
		v = math.RoundToEven(v) // rint
	}
	return v, nil
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func digitIn(c byte, base int) bool {
	switch base {
	case 16:
		return isHexDigit(c)
	case 8:
		return c >= '0' && c <= '7'
	}
	return c >= '0' && c <= '9'
}

// strtod reads the longest prefix of s that C's strtod takes (decimal,
// with an exponent, inf and nan), returning the value and its length.
func strtod(s string) (float64, int, error) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	low := strings.ToLower(s[i:])
	for _, w := range []string{"infinity", "inf", "nan"} {
		if strings.HasPrefix(low, w) {
			v, _ := strconv.ParseFloat(s[:i+len(w)], 64)
			return v, i + len(w), nil
		}
	}
	if i+2 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && isHexDigit(s[i+2]) {
		// C's strtod reads hex too (0x1 is a real 1); fractions of hex
		// numbers are not modelled.
		j := i + 2
		for j < len(s) && isHexDigit(s[j]) {
			j++
		}
		n, err := strconv.ParseUint(s[i+2:j], 16, 64)
		if err != nil {
			return 0, 0, err
		}
		v := float64(n)
		if s[0] == '-' {
			v = -v
		}
		return v, j, nil
	}
	d := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i, d = i+1, d+1
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i, d = i+1, d+1
		}
	}
	if d == 0 {
		return 0, 0, fmt.Errorf("no digits")
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && s[j] >= '0' && s[j] <= '9' {
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			i = j
		}
	}
	v, err := strconv.ParseFloat(s[:i], 64)
	if err != nil && !strings.Contains(err.Error(), "range") {
		return 0, 0, err
	}
	return v, i, nil
}

// Check reports why the server would refuse a value for a parameter
// (nil when it takes it): booleans, numbers with units and their range,
// enum labels. String values are taken as they are: their check hooks
// are the server's own.
func Check(p Param, value string) error {
	switch p.VarType {
	case "bool":
		if _, ok := ParseBool(value); !ok {
			return fmt.Errorf("parameter %q requires a Boolean value", p.Name)
		}
	case "integer", "real":
		v, err := ParseNumber(p, value)
		if err != nil {
			return err
		}
		if p.VarType == "integer" && (v > math.MaxInt32 || v < math.MinInt32) {
			return fmt.Errorf("%q is outside the range for parameter %q", value, p.Name)
		}
		if math.IsNaN(v) {
			return fmt.Errorf("%q is outside the range for parameter %q", value, p.Name)
		}
		lo, err1 := strconv.ParseFloat(p.Min, 64)
		hi, err2 := strconv.ParseFloat(p.Max, 64)
		if err1 == nil && err2 == nil && (v < lo || v > hi) {
			return fmt.Errorf("%q is outside the valid range for parameter %q (%s .. %s)", value, p.Name, p.Min, p.Max)
		}
	case "enum":
		if len(p.EnumVals) == 0 {
			return nil // labels that depend on the build are not modelled
		}
		if _, ok := enumLabel(p, value); !ok {
			return fmt.Errorf("invalid value for parameter %q: %q", p.Name, value)
		}
	}
	return nil
}

// CheckValue is Check for a value read from a configuration file on a
// major: booleans are not trimmed there, and the list settings with a
// vocabulary (log_connections on 18) are held to it.
func CheckValue(p Param, value string, major int) error {
	if p.VarType == "bool" {
		if value != strings.TrimLeft(value, " \t\n\r\f\v") || value != strings.TrimRight(value, " \t\n\r\f\v") {
			return fmt.Errorf("parameter %q requires a Boolean value", p.Name)
		}
	}
	if strings.EqualFold(p.Name, "log_connections") && p.VarType == "string" {
		return checkLogConnections(value)
	}
	return Check(p, value)
}

// LogConnectionsAspects are the words of 18's log_connections list.
var LogConnectionsAspects = []string{"receipt", "authentication", "authorization", "setup_durations", "all"}

// checkLogConnections follows 18's check hook: a Boolean (the old form),
// or a list of aspects ("all" among them).
func checkLogConnections(v string) error {
	items, ok := SplitQuotedList(v)
	if !ok {
		return fmt.Errorf("invalid list syntax in parameter \"log_connections\"")
	}
	if len(items) == 1 {
		if _, ok := ParseBool(items[0]); ok {
			return nil
		}
	}
	for _, it := range items {
		known := false
		for _, a := range LogConnectionsAspects {
			if strings.EqualFold(it, a) {
				known = true
			}
		}
		if !known {
			return fmt.Errorf("invalid option for parameter \"log_connections\": %q", it)
		}
	}
	return nil
}

// hiddenLabels are enum values a major takes that pg_settings.enumvals
// does not list, with the label they stand for (through 13,
// password_encryption = on still meant md5).
var hiddenLabels = map[string]struct {
	until  int
	labels map[string]string
}{
	"password_encryption": {13, map[string]string{"on": "md5", "true": "md5", "yes": "md5", "1": "md5"}},
}

// enumLabel matches an enum value case-insensitively, as the server does,
// to the label SHOW prints.
func enumLabel(p Param, value string) (string, bool) {
	for _, l := range p.EnumVals {
		if strings.EqualFold(l, value) {
			return l, true
		}
	}
	if h, ok := hiddenLabels[strings.ToLower(p.Name)]; ok && p.Since <= h.until && p.major <= h.until {
		if l, ok := h.labels[strings.ToLower(value)]; ok {
			return l, true
		}
	}
	return "", false
}

// SameValue reports whether two values mean the same setting of the
// parameter ("1min" and "60" for a seconds parameter, "On" and "true").
func SameValue(p Param, a, b string) (bool, error) {
	switch p.VarType {
	case "bool":
		x, ok1 := ParseBool(a)
		y, ok2 := ParseBool(b)
		if !ok1 || !ok2 {
			return false, fmt.Errorf("not a Boolean: %q or %q", a, b)
		}
		return x == y, nil
	case "integer", "real":
		x, err := ParseNumber(p, a)
		if err != nil {
			return false, err
		}
		y, err := ParseNumber(p, b)
		if err != nil {
			return false, err
		}
		return x == y, nil
	case "enum":
		x, ok1 := enumLabel(p, a)
		y, ok2 := enumLabel(p, b)
		if !ok1 || !ok2 {
			return false, fmt.Errorf("not a value of %s: %q or %q", p.Name, a, b)
		}
		return x == y, nil
	}
	return a == b, nil
}
