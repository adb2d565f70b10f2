package sdk

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/mod/semver"
)

// ParsePackageJSON reads the dependencies a package.json declares
// (dependencies, devDependencies, optionalDependencies), in name order.
func ParsePackageJSON(name string, data []byte) ([]Dependency, error) {
	var pj struct {
		Dependencies         map[string]string `json:"dependencies"`
		DevDependencies      map[string]string `json:"devDependencies"`
		OptionalDependencies map[string]string `json:"optionalDependencies"`
	}
	if err := json.Unmarshal(data, &pj); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrParse, name, err)
	}
	specs := map[string]string{}
	for _, m := range []map[string]string{pj.DevDependencies, pj.OptionalDependencies, pj.Dependencies} {
		for n, s := range m {
			specs[n] = s
		}
	}
	out := make([]Dependency, 0, len(specs))
	for n, s := range specs {
		d := Dependency{Ecosystem: NPM, Name: n, Spec: s, Manifest: name}
		if v, ok := exactNPM(s); ok {
			d.Version, d.Pinned = v, true
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// exactNPM reports whether an npm spec names one exact version ("1.2.3",
// "=1.2.3", "v1.2.3"); ranges, tags (latest), URLs and paths do not.
func exactNPM(spec string) (string, bool) {
	s := strings.TrimSpace(spec)
	s = strings.TrimPrefix(s, "=")
	s = strings.TrimPrefix(s, "v")
	if s == "" || !semver.IsValid("v"+s) || strings.Count(strings.SplitN(s, "-", 2)[0], ".") != 2 {
		return "", false
	}
	return s, true
}

// LockEntry is what a lock file records for one package.
type LockEntry struct {
	Version   string
	Integrity bool
}

// ParsePackageLock reads package-lock.json or npm-shrinkwrap.json
// (lockfileVersion 1, 2 and 3): the top-level install of each package.
func ParsePackageLock(data []byte) (map[string]LockEntry, error) {
	type entry struct {
		Version   string `json:"version"`
		Integrity string `json:"integrity"`
	}
	var lf struct {
		LockfileVersion int              `json:"lockfileVersion"`
		Packages        map[string]entry `json:"packages"`
		Dependencies    map[string]entry `json:"dependencies"`
	}
	if err := json.Unmarshal(data, &lf); err != nil {
		return nil, fmt.Errorf("%w: package lock: %w", ErrParse, err)
	}
	out := map[string]LockEntry{}
	if len(lf.Packages) > 0 {
		for k, e := range lf.Packages {
			n, ok := strings.CutPrefix(k, "node_modules/")
			if !ok || strings.Contains(n, "/node_modules/") {
				continue // the root package, or a nested install
			}
			out[n] = LockEntry{e.Version, e.Integrity != ""}
		}
		return out, nil
	}
	for n, e := range lf.Dependencies {
		out[n] = LockEntry{e.Version, e.Integrity != ""}
	}
	return out, nil
}
