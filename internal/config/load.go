package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

// Severity and Problem live in package conf, where every component's
// Validate can use them; these names keep config's callers unchanged.
type (
	Severity = conf.Severity
	Problem  = conf.Problem
)

const (
	Error   = conf.Error
	Warning = conf.Warning
)

// Problems is every finding of one load. As an error it lists them all.
type Problems struct {
	File string
	List []Problem
}

// HasErrors reports whether any problem is an Error.
func (ps *Problems) HasErrors() bool {
	for _, p := range ps.List {
		if p.Severity == Error {
			return true
		}
	}
	return false
}

func (ps *Problems) Error() string {
	var b strings.Builder
	n := 0
	for _, p := range ps.List {
		if p.Severity != Error {
			continue
		}
		if n > 0 {
			b.WriteString("\n")
		}
		n++
		b.WriteString(ps.File)
		b.WriteString(":")
		b.WriteString(p.String())
	}
	return fmt.Sprintf("%d config error(s):\n%s", n, b.String())
}

// MaxFileSize bounds the config file; a config is never this big.
const MaxFileSize = 4 << 20

// Load reads, decodes, defaults and validates the file at path. It returns
// the config and every warning; err is a *Problems listing every error (and
// the warnings) when the config cannot be used.
func Load(path string) (*Config, []Problem, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, nil, fmt.Errorf("config: %s is larger than %d bytes", path, MaxFileSize)
	}
	return Parse(path, data)
}

// Parse is Load on bytes; name is used in messages and to resolve relative paths.
func Parse(name string, data []byte) (*Config, []Problem, error) {
	ps := &Problems{File: name}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		ps.List = append(ps.List, yamlProblems(err, nil)...)
		return nil, ps.List, ps
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		ps.List = append(ps.List, Problem{Msg: "empty config file: start with `version: 1`"})
		return nil, ps.List, ps
	}
	idx := map[string]int{}
	byLine := map[int]string{}
	index(root.Content[0], "", idx, byLine)

	cfg := &Config{Path: name, lines: idx}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		ps.List = append(ps.List, yamlProblems(err, byLine)...)
		// Go on: a TypeError still leaves the rest decoded, and reporting
		// every problem at once beats a fix-one-rerun loop.
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, ps.List, ps
		}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		ps.List = append(ps.List, Problem{Line: extra.Line, Msg: "more than one YAML document in the file"})
	}

	v := &validator{cfg: cfg}
	v.scalars(reflect.ValueOf(cfg).Elem(), "")
	applyDefaults(cfg)
	v.validate()
	ps.List = append(ps.List, v.problems...)
	sort.SliceStable(ps.List, func(i, j int) bool {
		a, b := ps.List[i], ps.List[j]
		if a.Severity != b.Severity {
			return a.Severity < b.Severity
		}
		return a.Line < b.Line
	})
	if ps.HasErrors() {
		return cfg, ps.List, ps
	}
	return cfg, ps.List, nil
}

// index records the line of every config path.
func index(n *yaml.Node, path string, idx map[string]int, byLine map[int]string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if _, ok := idx[p]; !ok {
				idx[p] = k.Line
			}
			if _, ok := byLine[k.Line]; !ok {
				byLine[k.Line] = p
			}
			index(val, p, idx, byLine)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			idx[p] = c.Line
			index(c, p, idx, byLine)
		}
	case yaml.DocumentNode:
		for _, c := range n.Content {
			index(c, path, idx, byLine)
		}
	}
}

func lineOf(idx map[string]int, path string) int {
	for path != "" {
		if l, ok := idx[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

var (
	reLine     = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	reNotFound = regexp.MustCompile(`^field (\S+) not found in type config\.(\w+)$`)
	reCannot   = regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into (\\S+)$")
)

// yamlProblems turns yaml.v3's messages into Problems with friendlier text.
// It never repeats a scalar's value: a mistyped key may hold a secret.
func yamlProblems(err error, byLine map[int]string) []Problem {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	out := make([]Problem, 0, len(msgs))
	for _, m := range msgs {
		p := Problem{Msg: m}
		if sm := reLine.FindStringSubmatch(m); sm != nil {
			p.Line, _ = strconv.Atoi(sm[1])
			p.Msg = sm[2]
			p.Path = byLine[p.Line]
		}
		if sm := reNotFound.FindStringSubmatch(p.Msg); sm != nil {
			p.Msg = fmt.Sprintf("unknown key %q (not a field of %s; check spelling and indentation)", sm[1], strings.ToLower(sm[2]))
		} else if sm := reCannot.FindStringSubmatch(p.Msg); sm != nil {
			p.Msg = fmt.Sprintf("wrong type: got a %s, want %s", yamlKind(sm[1]), goTypeName(sm[3]))
		}
		out = append(out, p)
	}
	return out
}

func yamlKind(tag string) string {
	switch tag {
	case "str":
		return "string"
	case "int", "float":
		return "number"
	case "bool":
		return "boolean"
	case "seq":
		return "list"
	case "map":
		return "mapping"
	}
	return tag
}

func goTypeName(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["), strings.HasPrefix(t, "config."), strings.HasPrefix(t, "*config."):
		return "a mapping"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	}
	return "a " + t
}
