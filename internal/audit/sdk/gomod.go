package sdk

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"golang.org/x/mod/modfile"
)

// ParseGoMod reads a go.mod's requirements. Versions in go.mod are always
// exact (minimal version selection), so every one is pinned; sums, from
// ParseGoSum, give integrity.
func ParseGoMod(name string, data []byte) ([]Dependency, error) {
	f, err := modfile.ParseLax(name, data, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrParse, name, err)
	}
	replaced := map[string]string{}
	for _, r := range f.Replace {
		if r.New.Version == "" { // a local directory
			replaced[r.Old.Path] = "=> " + r.New.Path
		} else {
			replaced[r.Old.Path] = r.New.Version
		}
	}
	var out []Dependency
	for _, r := range f.Require {
		d := Dependency{Ecosystem: Go, Name: r.Mod.Path, Spec: r.Mod.Version, Version: r.Mod.Version, Pinned: true, Manifest: name}
		if r.Syntax != nil {
			d.Line = r.Syntax.Start.Line
		}
		if rep, ok := replaced[r.Mod.Path]; ok {
			if strings.HasPrefix(rep, "=> ") {
				d.Spec, d.Version, d.Pinned = rep, "", false
			} else {
				d.Spec, d.Version = r.Mod.Version+" => "+rep, rep
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// ParseGoSum returns the module@version pairs whose zip hash (h1:) go.sum
// records. Hand-written: go.sum is three fields a line, and x/mod has no
// parser for it.
func ParseGoSum(data []byte) (map[string]bool, error) {
	sums := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 || !strings.HasPrefix(f[2], "h1:") {
			return nil, fmt.Errorf("%w: go.sum line %d: want \"module version h1:hash\"", ErrParse, line)
		}
		if !strings.HasSuffix(f[1], "/go.mod") {
			sums[f[0]+"@"+f[1]] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: go.sum: %w", ErrParse, err)
	}
	return sums, nil
}
