package sdk

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"golang.org/x/mod/semver"
)

// maxOSVFile bounds one OSV record file.
const maxOSVFile = 8 << 20

// Advisory is the part of an OSV record (https://ossf.github.io/osv-schema/)
// the audit reads. Written by hand: the schema's Go bindings live in the
// large osv-scanner module.
type Advisory struct {
	ID               string     `json:"id"`
	Summary          string     `json:"summary"`
	Aliases          []string   `json:"aliases"`
	Withdrawn        string     `json:"withdrawn"`
	Affected         []Affected `json:"affected"`
	DatabaseSpecific struct {
		Severity string `json:"severity"`
	} `json:"database_specific"`
}

// Affected is one package an advisory affects.
type Affected struct {
	Package struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
	} `json:"package"`
	Ranges []struct {
		Type   string              `json:"type"`
		Events []map[string]string `json:"events"`
	} `json:"ranges"`
	Versions []string `json:"versions"`
}

// ParseOSV reads one OSV record.
func ParseOSV(data []byte) (*Advisory, error) {
	var a Advisory
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("%w: OSV record: %w", ErrParse, err)
	}
	if a.ID == "" {
		return nil, fmt.Errorf("%w: OSV record without an id", ErrParse)
	}
	return &a, nil
}

// OSV is an index of advisories by ecosystem and package name.
type OSV struct {
	byPkg map[string][]*Advisory
	// Records is how many advisories were read.
	Records int
}

// LoadOSV reads every *.json file under dir (an OSV export, e.g. the
// per-ecosystem all.zip of osv.dev, unzipped). Withdrawn advisories are
// left out.
func LoadOSV(dir string) (*OSV, error) {
	o := &OSV{byPkg: map[string][]*Advisory{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".json") {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, maxOSVFile))
		if err != nil {
			return err
		}
		a, err := ParseOSV(data)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if a.Withdrawn != "" {
			return nil
		}
		o.Records++
		for _, af := range a.Affected {
			k := af.Package.Ecosystem + "\x00" + normalize(af.Package.Ecosystem, af.Package.Name)
			if !slices.Contains(o.byPkg[k], a) {
				o.byPkg[k] = append(o.byPkg[k], a)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("osv: %w", err)
	}
	return o, nil
}

// Match is an advisory that affects a dependency's version.
type Match struct {
	ID       string   `json:"id"`
	Aliases  []string `json:"aliases,omitempty"`
	Summary  string   `json:"summary,omitempty"`
	Severity string   `json:"severity,omitempty"`
	// Fixed lists the versions that fix it, from the advisory's ranges.
	Fixed []string `json:"fixed,omitempty"`
}

// Affecting returns the advisories that affect eco/name at version, by id.
func (o *OSV) Affecting(eco, name, version string) []Match {
	var out []Match
	for _, a := range o.byPkg[eco+"\x00"+normalize(eco, name)] {
		for _, af := range a.Affected {
			if af.Package.Ecosystem != eco || normalize(eco, af.Package.Name) != normalize(eco, name) {
				continue
			}
			if hit, fixed := affects(eco, af, version); hit {
				out = append(out, Match{ID: a.ID, Aliases: a.Aliases, Summary: a.Summary, Severity: a.DatabaseSpecific.Severity, Fixed: fixed})
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// affects evaluates an OSV affected entry for one version: the explicit
// versions list, then each SEMVER or ECOSYSTEM range (events in order:
// introduced opens, fixed closes, last_affected closes after itself).
func affects(eco string, af Affected, version string) (bool, []string) {
	var fixed []string
	hit := slices.ContainsFunc(af.Versions, func(v string) bool { c, ok := compareVersions(eco, v, version); return ok && c == 0 })
	for _, r := range af.Ranges {
		if r.Type != "SEMVER" && r.Type != "ECOSYSTEM" {
			continue
		}
		in := false
		for _, ev := range r.Events {
			for kind, at := range ev {
				switch kind {
				case "introduced":
					c, ok := compareVersions(eco, at, version)
					if at == "0" || ok && c <= 0 {
						in = true
					}
				case "fixed":
					fixed = append(fixed, at)
					if c, ok := compareVersions(eco, at, version); ok && c <= 0 {
						in = false
					}
				case "last_affected":
					if c, ok := compareVersions(eco, at, version); ok && c < 0 {
						in = false
					}
				}
			}
		}
		hit = hit || in
	}
	return hit, fixed
}

// compareVersions compares a and b in eco's ordering; ok is false when
// either does not parse.
func compareVersions(eco, a, b string) (int, bool) {
	switch eco {
	case PyPI:
		va, ea := ParsePEP440(a)
		vb, eb := ParsePEP440(b)
		if ea != nil || eb != nil {
			return 0, false
		}
		return ComparePEP440(va, vb), true
	default: // Go and npm: semantic versions
		va, vb := "v"+strings.TrimPrefix(a, "v"), "v"+strings.TrimPrefix(b, "v")
		if !semver.IsValid(va) || !semver.IsValid(vb) {
			return 0, false
		}
		return semver.Compare(va, vb), true
	}
}
