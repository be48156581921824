package rlstest

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pgaegis/pgaegis/internal/policy"
	"github.com/pgaegis/pgaegis/internal/policy/rlstest/missingok"
)

// LintExpr returns what is wrong with one policy expression (USING or
// WITH CHECK): each current_setting call without missing_ok.
func LintExpr(expr string) []string {
	var out []string
	for _, c := range missingok.Unsafe(expr) {
		how := "without missing_ok"
		if c.MissingOK == "false" {
			how = "with missing_ok false"
		}
		out = append(out, fmt.Sprintf("current_setting(%s) is called %s: %s", c.Setting, how, missingok.Why))
	}
	return out
}

// Lint checks the row-level security a policy file declares: the
// missing_ok of current_setting calls, a permissive USING (true) beside
// narrower policies for the same role (permissive policies are OR-ed, so
// the true one wins), and a table whose owner is a role its tests run as
// while RLS is not forced (the owner bypasses the policies).
func Lint(f *policy.File) []policy.Note {
	var notes []policy.Note
	forTables(f, func(db, schema, table string, s *policy.Schema, r *policy.RLS) {
		obj := fmt.Sprintf("table %s.%s.%s", db, schema, table)
		for _, name := range sortedKeys(r.Policies) {
			p := r.Policies[name]
			if p == nil {
				continue
			}
			for _, e := range []struct{ clause, text string }{{"USING", p.Using}, {"WITH CHECK", p.Check}} {
				for _, why := range LintExpr(e.text) {
					notes = append(notes, policy.Note{Level: "warning", Object: obj, Text: fmt.Sprintf("policy %q %s: %s", name, e.clause, why)})
				}
			}
		}
		notes = append(notes, permissiveTrue(obj, r.Policies)...)
		if len(r.Policies) > 0 && !r.Force {
			owner := tableOwner(s, table)
			for _, t := range r.Tests {
				if owner != "" && t.As == owner {
					notes = append(notes, policy.Note{Level: "warning", Object: obj, Text: fmt.Sprintf("role %q owns the table and RLS is not forced: the owner bypasses every policy (set force: true, or give the table a NOLOGIN owner)", owner)})
					break
				}
			}
		}
	})
	return notes
}

// permissiveTrue flags a permissive policy whose USING is literally true
// for a role that other, narrower permissive policies also cover.
func permissiveTrue(obj string, ps policy.RowPolicies) []policy.Note {
	var notes []policy.Note
	names := sortedKeys(ps)
	for _, n := range names {
		p := ps[n]
		if p == nil || p.Restrictive || !reads(p) || !literallyTrue(p.Using) {
			continue
		}
		for _, role := range rolesOf(p) {
			for _, o := range names {
				q := ps[o]
				if o == n || q == nil || q.Restrictive || !reads(q) || literallyTrue(q.Using) || !covers(q, role) {
					continue
				}
				notes = append(notes, policy.Note{Level: "warning", Object: obj, Text: fmt.Sprintf("policy %q is USING (true) for %s beside the narrower policy %q: permissive policies are OR-ed, so %s sees every row", n, role, o, role)})
				break
			}
		}
	}
	return notes
}

// reads: the policy filters SELECT (ALL or SELECT).
func reads(p *policy.RowPolicy) bool {
	c := strings.ToUpper(strings.TrimSpace(p.Command))
	return c == "" || c == "ALL" || c == "SELECT"
}

func rolesOf(p *policy.RowPolicy) []string {
	if len(p.Roles) == 0 {
		return []string{"PUBLIC"}
	}
	return p.Roles
}

// covers: the policy applies to role (by name or through PUBLIC).
func covers(p *policy.RowPolicy, role string) bool {
	for _, r := range rolesOf(p) {
		if r == role || strings.EqualFold(r, "PUBLIC") || strings.EqualFold(role, "PUBLIC") {
			return true
		}
	}
	return false
}

// literallyTrue: the expression is the constant true, in any parentheses.
func literallyTrue(e string) bool {
	toks := missingok.Significant(e)
	for len(toks) >= 3 && e[toks[0].Start:toks[0].End] == "(" && e[toks[len(toks)-1].Start:toks[len(toks)-1].End] == ")" {
		toks = toks[1 : len(toks)-1]
	}
	return len(toks) == 1 && strings.EqualFold(e[toks[0].Start:toks[0].End], "true")
}

// tableOwner is the owner the file gives a table ("*" as the fallback).
func tableOwner(s *policy.Schema, table string) string {
	if o := s.Tables[table]; o != nil && o.Owner != "" {
		return o.Owner
	}
	if o := s.Tables["*"]; o != nil {
		return o.Owner
	}
	return ""
}

// forTables visits every table with an RLS entry, in name order.
func forTables(f *policy.File, fn func(db, schema, table string, s *policy.Schema, r *policy.RLS)) {
	if f == nil {
		return
	}
	for _, db := range sortedKeys(f.Databases) {
		d := f.Databases[db]
		if d == nil {
			continue
		}
		for _, sn := range sortedKeys(d.Schemas) {
			s := d.Schemas[sn]
			if s == nil {
				continue
			}
			for _, tn := range sortedKeys(s.RLS) {
				if r := s.RLS[tn]; r != nil {
					fn(db, sn, tn, s, r)
				}
			}
		}
	}
}

func sortedKeys[M ~map[string]V, V any](m M) []string { return slices.Sorted(maps.Keys(m)) }
