package validate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// compile31 compiles every response schema of an OpenAPI 3.1 document once,
// as JSON Schema 2020-12. The whole document is one resource, so that
// "#/components/schemas/X" references resolve the way the spec author meant,
// and schemas shared between operations are compiled once.
func (s *Spec) compile31(abs string, data []byte) error {
	raw, err := rawDocument(data)
	if err != nil {
		return err
	}
	docURL := (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(siblingLoader{dir: filepath.Dir(abs)})
	if err := c.AddResource(docURL, raw); err != nil {
		return fmt.Errorf("as JSON Schema: %w", err)
	}
	for _, method := range sortedKeys(s.paths) {
		for _, sp := range s.paths[method] {
			op := sp.op
			if op.responses == nil {
				continue
			}
			for _, code := range op.responses.Keys() {
				rr := op.responses.Value(code)
				for _, mt := range sortedKeys(rr.Value.Content) {
					m := rr.Value.Content[mt]
					entry := s.mtIndex[m]
					if entry == nil || entry.schema == nil {
						continue
					}
					ptr, err := schemaPointer(raw, sp.path, strings.ToLower(method), code, mt)
					if err != nil {
						return fmt.Errorf("%s %s response %s %s: %w", method, sp.path, code, mt, err)
					}
					entry.js, err = c.Compile(docURL + "#" + (&url.URL{Fragment: ptr}).EscapedFragment())
					if err != nil {
						return fmt.Errorf("%s %s response %s %s: schema does not compile: %w", method, sp.path, code, mt, err)
					}
				}
			}
		}
	}
	return nil
}

// rawDocument decodes a JSON or YAML document into the generic form the
// JSON Schema compiler takes (numbers as json.Number, string map keys).
func rawDocument(data []byte) (any, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return jsonschema.UnmarshalJSON(bytes.NewReader(data))
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	// Round-trip through JSON: YAML may key a map by a number (a response
	// code written as 200:), which JSON Schema cannot address.
	b, err := json.Marshal(stringKeys(v))
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

func stringKeys(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = stringKeys(x)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[fmt.Sprint(k)] = stringKeys(x)
		}
		return m
	case []any:
		for i, x := range t {
			t[i] = stringKeys(x)
		}
	}
	return v
}

// schemaPointer finds the JSON pointer of a response media type's schema in
// the raw document, following local $refs of the path item and the response.
func schemaPointer(raw any, path, method, code, mt string) (string, error) {
	ptr := "/paths/" + escapePointer(path)
	node, ptr, err := follow(raw, ptr)
	if err != nil {
		return "", err
	}
	// The path item and the response object may each be a local $ref;
	// child follows them.
	for _, st := range []string{method, "responses", code, "content", mt, "schema"} {
		node, ptr, err = child(raw, node, ptr, st)
		if err != nil {
			return "", err
		}
	}
	return ptr, nil
}

func child(raw, node any, ptr, key string) (any, string, error) {
	m, ok := node.(map[string]any)
	if !ok {
		return nil, "", fmt.Errorf("%s: not an object", ptr)
	}
	if ref, ok := m["$ref"].(string); ok && m[key] == nil {
		if !strings.HasPrefix(ref, "#/") {
			return nil, "", fmt.Errorf("%s: $ref %q: only references within the document are supported here for OpenAPI 3.1", ptr, ref)
		}
		var err error
		node, ptr, err = follow(raw, strings.TrimPrefix(ref, "#"))
		if err != nil {
			return nil, "", err
		}
		return child(raw, node, ptr, key)
	}
	next, ok := m[key]
	if !ok {
		return nil, "", fmt.Errorf("%s: no %q", ptr, key)
	}
	return next, ptr + "/" + escapePointer(key), nil
}

// follow resolves an absolute JSON pointer in raw.
func follow(raw any, ptr string) (any, string, error) {
	node := raw
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := node.(map[string]any)
		if !ok {
			return nil, "", fmt.Errorf("%s: not found", ptr)
		}
		if node, ok = m[tok]; !ok {
			return nil, "", fmt.Errorf("%s: not found", ptr)
		}
	}
	return node, ptr, nil
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// siblingLoader lets a 3.1 schema $ref files in the spec's directory or below.
type siblingLoader struct{ dir string }

func (l siblingLoader) Load(u string) (any, error) {
	pu, err := url.Parse(u)
	if err != nil || pu.Scheme != "file" {
		return nil, fmt.Errorf("$ref %q: remote references are not loaded; keep referenced files next to the spec", u)
	}
	p := filepath.Clean(filepath.FromSlash(pu.Path))
	rel, err := filepath.Rel(l.dir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("$ref %q: outside the spec's directory", pu.Path)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return rawDocument(data)
}
