package report

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pgaegis/pgaegis/internal/rules"
)

// SARIF 2.1.0 (OASIS). Only the fields we fill are modelled.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool               sarifTool                   `json:"tool"`
	Invocations        []sarifInvocation           `json:"invocations"`
	OriginalURIBaseIDs map[string]sarifArtifactLoc `json:"originalUriBaseIds,omitempty"`
	Results            []sarifResult               `json:"results"`
	AutomationDetails  *sarifAutomation            `json:"automationDetails,omitempty"`
	ColumnKind         string                      `json:"columnKind"`
}

type sarifAutomation struct {
	ID string `json:"id"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

type sarifRule struct {
	ID                   string            `json:"id"`
	Name                 string            `json:"name"`
	ShortDescription     sarifText         `json:"shortDescription"`
	FullDescription      sarifText         `json:"fullDescription"`
	Help                 sarifText         `json:"help"`
	DefaultConfiguration sarifRuleConfig   `json:"defaultConfiguration"`
	Properties           sarifRuleProperty `json:"properties"`
}

type sarifRuleConfig struct {
	Level string `json:"level"`
}

type sarifRuleProperty struct {
	Tags             []string `json:"tags"`
	SecuritySeverity string   `json:"security-severity"`
	Precision        string   `json:"precision"`
}

type sarifInvocation struct {
	ExecutionSuccessful bool `json:"executionSuccessful"`
}

type sarifArtifactLoc struct {
	URI       string `json:"uri"`
	URIBaseID string `json:"uriBaseId,omitempty"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifactLoc `json:"artifactLocation"`
	Region           *sarifRegion     `json:"region,omitempty"`
}

type sarifLogical struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

type sarifLocation struct {
	PhysicalLocation *sarifPhysical `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogical `json:"logicalLocations,omitempty"`
}

type sarifSuppression struct {
	Kind          string `json:"kind"`
	Status        string `json:"status"`
	Justification string `json:"justification"`
}

type sarifResult struct {
	RuleID              string             `json:"ruleId"`
	RuleIndex           int                `json:"ruleIndex"`
	Level               string             `json:"level"`
	Message             sarifText          `json:"message"`
	Locations           []sarifLocation    `json:"locations"`
	PartialFingerprints map[string]string  `json:"partialFingerprints"`
	Suppressions        []sarifSuppression `json:"suppressions,omitempty"`
	Properties          map[string]any     `json:"properties,omitempty"`
}

func sarifLevel(s rules.Severity) string {
	switch s {
	case rules.Critical, rules.High:
		return "error"
	case rules.Medium:
		return "warning"
	}
	return "note"
}

// securitySeverity is the CVSS-like score code scanning sorts by.
func securitySeverity(s rules.Severity) string {
	return map[rules.Severity]string{rules.Critical: "9.5", rules.High: "8.0", rules.Medium: "5.5", rules.Low: "3.0", rules.Info: "0.0"}[s]
}

// SARIFOptions: Root makes file locations relative (so code scanning can
// place them in the configuration repository); empty means the working
// directory.
type SARIFOptions struct {
	Root string
}

// WriteSARIF writes failing (and waived, as suppressed) findings as SARIF
// 2.1.0. File-based findings point at file and line.
func WriteSARIF(w io.Writer, r *Report, o SARIFOptions) error {
	root := o.Root
	if root == "" {
		root, _ = os.Getwd()
	}
	root, _ = filepath.Abs(root)
	meta := map[string]*rules.Rule{}
	for _, ru := range rules.All() {
		meta[ru.ID] = ru
	}
	run := sarifRun{
		Tool:        sarifTool{Driver: sarifDriver{Name: "pgaegis", Version: r.ToolVersion, InformationURI: "https://github.com/pgaegis/pgaegis"}},
		Invocations: []sarifInvocation{{ExecutionSuccessful: true}},
		OriginalURIBaseIDs: map[string]sarifArtifactLoc{
			"SRCROOT": {URI: fileURI(root) + "/"},
		},
		AutomationDetails: &sarifAutomation{ID: "pgaegis/" + r.Target.Description},
		ColumnKind:        "unicodeCodePoints",
		Results:           []sarifResult{},
	}
	index := map[string]int{}
	for _, f := range r.Findings {
		if f.Status != rules.Fail && f.Status != rules.Waived {
			continue
		}
		i, ok := index[f.Rule]
		if !ok {
			i = len(run.Tool.Driver.Rules)
			index[f.Rule] = i
			run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRuleFor(f, meta[f.Rule]))
		}
		res := sarifResult{
			RuleID: f.Rule, RuleIndex: i, Level: sarifLevel(f.Severity),
			Message:             sarifText{Text: sarifMessage(f)},
			PartialFingerprints: map[string]string{"pgaegis/v1": fingerprint(f)},
			Properties:          map[string]any{"severity": f.Severity.String(), "object": f.Object},
		}
		if f.Fix != "" {
			res.Properties["fix"] = f.Fix
		}
		if len(f.Objects) > 0 {
			// Every object of a finding that stands for many (see docs/json-report.md).
			res.Properties["objects"] = f.Objects
			res.Properties["count"] = f.Count
		}
		res.Locations = []sarifLocation{sarifLocationFor(f, root)}
		if f.Status == rules.Waived && f.Waiver != nil {
			res.Suppressions = []sarifSuppression{{Kind: "external", Status: "accepted", Justification: f.Waiver.Reason + " (until " + f.Waiver.Expires + ")"}}
		}
		run.Results = append(run.Results, res)
	}
	if run.Tool.Driver.Rules == nil {
		run.Tool.Driver.Rules = []sarifRule{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(sarifLog{Schema: "https://json.schemastore.org/sarif-2.1.0.json", Version: "2.1.0", Runs: []sarifRun{run}})
}

func sarifRuleFor(f rules.Finding, ru *rules.Rule) sarifRule {
	sr := sarifRule{ID: f.Rule, Name: ruleName(f.Rule), ShortDescription: sarifText{Text: f.Title},
		FullDescription: sarifText{Text: f.Title}, DefaultConfiguration: sarifRuleConfig{Level: sarifLevel(f.Severity)},
		Properties: sarifRuleProperty{Tags: []string{"security", "postgresql", f.Area}, SecuritySeverity: securitySeverity(f.Severity), Precision: "high"}}
	var refs []string
	for _, ref := range f.References {
		refs = append(refs, ref.Name())
	}
	help := strings.Join(refs, "; ")
	if ru != nil {
		sr.FullDescription.Text = ru.Rationale
		sr.DefaultConfiguration.Level = sarifLevel(ru.Severity)
		sr.Properties.SecuritySeverity = securitySeverity(ru.Severity)
		help = ru.Rationale + "\n\nReferences: " + help
	}
	sr.Help = sarifText{Text: help}
	return sr
}

// ruleName turns AUTH-07.final-reject into a PascalCase SARIF name.
func ruleName(id string) string {
	var b strings.Builder
	up := true
	for _, r := range id {
		if r == '-' || r == '.' || r == '_' {
			up = true
			continue
		}
		if up && r >= 'a' && r <= 'z' {
			r -= 'a' - 'A'
		}
		up = false
		b.WriteRune(r)
	}
	return b.String()
}

func sarifMessage(f rules.Finding) string {
	msg := f.Title + ": " + f.Evidence
	if f.Expected != "" {
		msg += ". Expected: " + f.Expected
	}
	if f.Fix != "" {
		msg += ". Fix: " + f.Fix
	}
	return msg
}

func fingerprint(f rules.Finding) string {
	h := sha256.Sum256([]byte(f.Key()))
	return hex.EncodeToString(h[:16])
}

// sarifLocationFor points at file:line when the finding has one, else at
// the database object as a logical location.
func sarifLocationFor(f rules.Finding, root string) sarifLocation {
	path, line := splitLocation(f.Location)
	if path == "" || !filepath.IsAbs(path) {
		return sarifLocation{LogicalLocations: []sarifLogical{{Name: f.Object, FullyQualifiedName: f.Object, Kind: "object"}}}
	}
	loc := sarifArtifactLoc{URI: fileURI(path)}
	if rel, err := filepath.Rel(root, path); err == nil && !strings.HasPrefix(rel, "..") {
		loc = sarifArtifactLoc{URI: (&url.URL{Path: filepath.ToSlash(rel)}).String(), URIBaseID: "SRCROOT"}
	}
	p := &sarifPhysical{ArtifactLocation: loc}
	if line > 0 {
		p.Region = &sarifRegion{StartLine: line}
	}
	return sarifLocation{PhysicalLocation: p, LogicalLocations: []sarifLogical{{Name: f.Object, FullyQualifiedName: f.Object, Kind: "object"}}}
}

func fileURI(path string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(path)}).String()
}

// splitLocation splits "file:line" (the line is optional).
func splitLocation(loc string) (string, int) {
	if i := strings.LastIndexByte(loc, ':'); i > 0 {
		if n, err := strconv.Atoi(loc[i+1:]); err == nil {
			return loc[:i], n
		}
	}
	return loc, 0
}
