package sdk

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// reRequirement is one requirement line of pip's format (PEP 508 subset):
// name, optional [extras], then the version specifiers up to a marker (;)
// or an option (--hash).
var reRequirement = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*((?:===|==|!=|<=|>=|~=|<|>|@)[^;#]*?)?\s*(;[^#]*)?$`)

// ParseRequirements reads a requirements.txt. Hand-written: pip's format
// has no Go parser. A requirement is pinned when its only specifier is
// == or === with no wildcard, and has integrity when it carries --hash
// (continued lines joined). Includes (-r, -c), editable installs (-e) and
// other options are skipped.
func ParseRequirements(name string, data []byte) ([]Dependency, error) {
	var out []Dependency
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line, start := 0, 0
	var cur strings.Builder
	flush := func() error {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if i := strings.Index(text, " #"); i >= 0 {
			text = strings.TrimSpace(text[:i])
		}
		if text == "" || strings.HasPrefix(text, "#") || strings.HasPrefix(text, "-") {
			return nil
		}
		req, opts, _ := strings.Cut(text, " --")
		if strings.HasPrefix(opts, "hash") {
			opts = "--" + opts
		}
		m := reRequirement.FindStringSubmatch(strings.TrimSpace(req))
		if m == nil {
			return fmt.Errorf("%w: %s line %d: not a requirement", ErrParse, name, start)
		}
		spec := strings.ReplaceAll(m[3], " ", "")
		d := Dependency{Ecosystem: PyPI, Name: m[1], Spec: spec, Manifest: name, Line: start,
			Integrity: strings.Contains(opts, "--hash=") || strings.Contains(opts, "--hash ")}
		if v, ok := exactPEP440(spec); ok {
			d.Version, d.Pinned = v, true
		}
		out = append(out, d)
		return nil
	}
	for sc.Scan() {
		line++
		t := sc.Text()
		if cur.Len() == 0 {
			start = line
		}
		if s, ok := strings.CutSuffix(strings.TrimRight(t, " \t"), `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(t)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrParse, name, err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// exactPEP440 reports whether a specifier set pins one version:
// "==1.2.3" or "===1.2.3", without wildcards or other clauses.
func exactPEP440(spec string) (string, bool) {
	v, ok := strings.CutPrefix(spec, "===")
	if !ok {
		v, ok = strings.CutPrefix(spec, "==")
	}
	if !ok || v == "" || strings.ContainsAny(v, ",*<>=!~") {
		return "", false
	}
	if _, err := ParsePEP440(v); err != nil {
		return "", false
	}
	return v, true
}

// ParsePyProject reads the dependencies of a pyproject.toml: Poetry's
// [tool.poetry.dependencies] (and group dependencies) or PEP 621's
// [project] dependencies.
func ParsePyProject(name string, data []byte) ([]Dependency, error) {
	var pp struct {
		Project struct {
			Dependencies []string `toml:"dependencies"`
		} `toml:"project"`
		Tool struct {
			Poetry struct {
				Dependencies map[string]any `toml:"dependencies"`
				Group        map[string]struct {
					Dependencies map[string]any `toml:"dependencies"`
				} `toml:"group"`
			} `toml:"poetry"`
		} `toml:"tool"`
	}
	if _, err := toml.Decode(string(data), &pp); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrParse, name, err)
	}
	specs := map[string]string{}
	addPoetry := func(m map[string]any) {
		for n, v := range m {
			if strings.EqualFold(n, "python") {
				continue
			}
			switch s := v.(type) {
			case string:
				specs[n] = s
			case map[string]any:
				spec, _ := s["version"].(string)
				specs[n] = spec
			}
		}
	}
	addPoetry(pp.Tool.Poetry.Dependencies)
	for _, g := range pp.Tool.Poetry.Group {
		addPoetry(g.Dependencies)
	}
	for _, req := range pp.Project.Dependencies {
		m := reRequirement.FindStringSubmatch(strings.TrimSpace(req))
		if m != nil {
			specs[m[1]] = strings.ReplaceAll(m[3], " ", "")
		}
	}
	out := make([]Dependency, 0, len(specs))
	for n, s := range specs {
		d := Dependency{Ecosystem: PyPI, Name: n, Spec: s, Manifest: name}
		// Poetry reads a bare version ("2.1.0") as ==2.1.0.
		exact := s
		if _, err := ParsePEP440(s); err == nil {
			exact = "==" + s
		}
		if v, ok := exactPEP440(exact); ok {
			d.Version, d.Pinned = v, true
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ParsePoetryLock reads poetry.lock: each [[package]]'s version, and
// whether file hashes are recorded (files = [...] in lock format 2, or
// [metadata.files] in format 1). Keys are PEP 503-normalised names.
func ParsePoetryLock(data []byte) (map[string]LockEntry, error) {
	type file struct {
		Hash string `toml:"hash"`
	}
	var pl struct {
		Package []struct {
			Name    string `toml:"name"`
			Version string `toml:"version"`
			Files   []file `toml:"files"`
		} `toml:"package"`
		Metadata struct {
			Files map[string][]file `toml:"files"`
		} `toml:"metadata"`
	}
	if _, err := toml.Decode(string(data), &pl); err != nil {
		return nil, fmt.Errorf("%w: poetry.lock: %w", ErrParse, err)
	}
	hashed := func(fs []file) bool {
		for _, f := range fs {
			if f.Hash != "" {
				return true
			}
		}
		return false
	}
	out := map[string]LockEntry{}
	for _, p := range pl.Package {
		n := normalize(PyPI, p.Name)
		out[n] = LockEntry{p.Version, hashed(p.Files) || hashed(pl.Metadata.Files[p.Name]) || hashed(pl.Metadata.Files[n])}
	}
	return out, nil
}
