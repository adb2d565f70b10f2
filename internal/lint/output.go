package lint

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
)

// WriteText writes one line per finding, `file:LINE: severity: path:
// message [ID]`, its fix on the next line, and a closing count line.
func WriteText(w io.Writer, r Report) error {
	for _, f := range r.Findings {
		loc := r.File
		if f.Line > 0 {
			loc = fmt.Sprintf("%s:%d", r.File, f.Line)
		}
		path := ""
		if f.Path != "" {
			path = f.Path + ": "
		}
		if _, err := fmt.Fprintf(w, "%s: %s: %s%s [%s]\n", loc, f.Severity, path, f.Message, f.ID); err != nil {
			return err
		}
		if f.Fix != "" {
			if _, err := fmt.Fprintf(w, "    fix: %s\n", f.Fix); err != nil {
				return err
			}
		}
	}
	e, wn, i := r.Counts()
	_, err := fmt.Fprintf(w, "%s: %d error(s), %d warning(s), %d info\n", r.File, e, wn, i)
	return err
}

type jsonFinding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Path     string `json:"path,omitempty"`
	Line     int    `json:"line,omitempty"`
	Message  string `json:"message"`
	Fix      string `json:"fix,omitempty"`
}

// WriteJSON writes {"file","errors","warnings","infos","problems":[...]}.
func WriteJSON(w io.Writer, r Report) error {
	items := make([]jsonFinding, 0, len(r.Findings))
	for _, f := range r.Findings {
		items = append(items, jsonFinding{string(f.ID), f.Severity.String(), f.Path, f.Line, f.Message, f.Fix})
	}
	e, wn, i := r.Counts()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		File     string        `json:"file"`
		Errors   int           `json:"errors"`
		Warnings int           `json:"warnings"`
		Infos    int           `json:"infos"`
		Problems []jsonFinding `json:"problems"`
	}{r.File, e, wn, i, items})
}

// SARIF 2.1.0, the subset GitHub code scanning reads. Written by hand:
// the Go SARIF libraries model the whole specification for what is a
// dozen fields here.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string           `json:"id"`
	Name                 string           `json:"name"`
	ShortDescription     sarifText        `json:"shortDescription"`
	Help                 sarifText        `json:"help"`
	DefaultConfiguration sarifRuleConfig  `json:"defaultConfiguration"`
	Properties           map[string][]any `json:"properties,omitempty"`
}

type sarifRuleConfig struct {
	Level string `json:"level"`
}

type sarifResult struct {
	RuleID    string          `json:"ruleId"`
	RuleIndex int             `json:"ruleIndex"`
	Level     string          `json:"level"`
	Message   sarifText       `json:"message"`
	Locations []sarifLocation `json:"locations"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           sarifRegion   `json:"region"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

// WriteSARIF writes the report as a SARIF 2.1.0 log. Each result's message
// carries the config path, the message and the fix; findings without a
// line point at line 1.
func WriteSARIF(w io.Writer, r Report, version string) error {
	rules := Rules()
	index := map[string]int{}
	driver := sarifDriver{Name: "portcullis", Version: version, InformationURI: "https://github.com/portcullis-dev/portcullis"}
	for i, rule := range rules {
		index[string(rule.ID)] = i
		driver.Rules = append(driver.Rules, sarifRule{
			ID: string(rule.ID), Name: rule.Name, ShortDescription: sarifText{rule.Title},
			Help:                 sarifText{rule.Fix},
			DefaultConfiguration: sarifRuleConfig{sarifLevel(rule.Severity)},
			Properties:           map[string][]any{"tags": {"security", "configuration"}},
		})
	}
	results := make([]sarifResult, 0, len(r.Findings))
	for _, f := range r.Findings {
		msg := f.Message
		if f.Path != "" {
			msg = f.Path + ": " + msg
		}
		if f.Fix != "" {
			msg += " Fix: " + f.Fix
		}
		line := max(f.Line, 1)
		results = append(results, sarifResult{
			RuleID: string(f.ID), RuleIndex: index[string(f.ID)], Level: sarifLevel(f.Severity), Message: sarifText{msg},
			Locations: []sarifLocation{{sarifPhysical{sarifArtifact{filepath.ToSlash(r.File)}, sarifRegion{line}}}},
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarifLog{
		Schema:  "https://json.schemastore.org/sarif-2.1.0.json",
		Version: "2.1.0",
		Runs:    []sarifRun{{Tool: sarifTool{driver}, Results: results}},
	})
}
