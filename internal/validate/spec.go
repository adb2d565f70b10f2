package validate

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// ErrSpec is wrapped by every error [LoadSpec] returns for a document it
// could read but not use.
var ErrSpec = errors.New("bad OpenAPI document")

// Spec is a loaded, compiled OpenAPI 3.0 or 3.1 document. It is immutable
// after [LoadSpec] and safe for concurrent use; load it once per config load
// and share it between the validator and drift detection of an integration.
type Spec struct {
	file    string
	version string
	v31     bool
	doc     *openapi3.T
	base    string                 // path of the first server URL, e.g. "/api"
	paths   map[string][]*specPath // by upper-case method
	names   map[string]struct{}    // property names the response schemas declare
	// writeOnly is set when a response schema declares a writeOnly property.
	writeOnly bool
	cache     sync.Map     // routeKey -> *operation (nil when none)
	cached    atomic.Int64 // entries in cache, bounded by maxCachedRoutes
	mtIndex   map[*openapi3.MediaType]*mediaType
}

// specPath is one path template of the spec with its operation for a method.
type specPath struct {
	path string   // as written, "/v1/charges/{charge}"
	segs []string // normalised segments, params as "{}"
	op   *operation
}

type operation struct {
	method    string
	path      string
	responses *openapi3.Responses
	byRef     map[*openapi3.Response]*response
}

type response struct {
	content openapi3.Content // nil or empty: no body documented
}

// mediaType is a documented media type with its compiled schema, if any.
type mediaType struct {
	json   bool
	schema *openapi3.Schema   // nil when the media type has no schema
	js     *jsonschema.Schema // 3.1 only: compiled once at load
	fast   *cnode             // 3.0 without writeOnly: kin's verdict, compiled once at load
}

// RouteKey is a gateway route: an HTTP method and the gateway's path template,
// e.g. {GET, /v1/charges/{id}}. Parameter names need not match the spec's.
type RouteKey struct {
	Method string
	Path   string
}

func (r RouteKey) String() string { return r.Method + " " + r.Path }

// LoadSpec reads, validates and compiles an OpenAPI 3.0 or 3.1 document
// (JSON or YAML). Relative $refs may name files in the document's directory
// or below it; remote $refs are refused, so loading a spec never makes a
// network call. Errors name the file and the problem.
func LoadSpec(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("openapi %s: %w", path, err)
	}
	s, err := parseSpec(path, data)
	if err != nil {
		return nil, fmt.Errorf("openapi %s: %w: %w", path, ErrSpec, err)
	}
	return s, nil
}

func parseSpec(path string, data []byte) (*Spec, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = true
	loader.ReadFromURIFunc = localFilesUnder(filepath.Dir(abs))
	doc, err := loader.LoadFromDataWithPath(data, &url.URL{Path: filepath.ToSlash(abs)})
	if err != nil {
		return nil, err
	}
	s := &Spec{file: path, version: doc.OpenAPI, doc: doc, mtIndex: map[*openapi3.MediaType]*mediaType{}}
	switch {
	case strings.HasPrefix(doc.OpenAPI, "3.0."):
	case strings.HasPrefix(doc.OpenAPI, "3.1."):
		s.v31 = true
	case doc.OpenAPI == "":
		return nil, errors.New(`no "openapi" version field: only OpenAPI 3.0 and 3.1 are supported (convert Swagger 2.0 first)`)
	default:
		return nil, fmt.Errorf("openapi %q: only 3.0.x and 3.1.x are supported", doc.OpenAPI)
	}
	if err := checkDocument(doc); err != nil {
		return nil, err
	}
	if len(doc.Servers) > 0 {
		if u, err := url.Parse(doc.Servers[0].URL); err == nil {
			s.base = strings.TrimSuffix(u.Path, "/")
		}
	}
	if err := s.index(); err != nil {
		return nil, err
	}
	if s.v31 {
		if err := s.compile31(abs, data); err != nil {
			return nil, err
		}
	}
	s.names = declaredNames(s)
	if !s.v31 && !s.writeOnly {
		s.compile30()
	}
	return s, nil
}

// checkDocument runs kin-openapi's document validation. Examples are not
// checked (vendors' examples are often stale, and they do not affect what a
// response is checked against). Two path templates that differ only in
// parameter names ("conflicting paths", present in GitHub's own spec) are
// tolerated here; [Spec.index] refuses them only if they define the same
// method, where a route could not say which operation it means.
func checkDocument(doc *openapi3.T) error {
	err := doc.Validate(context.Background(), openapi3.DisableExamplesValidation(), openapi3.EnableMultiError())
	if err == nil {
		return nil
	}
	var fatal []string
	for _, e := range leafErrors(err) {
		var conflict *openapi3.ConflictingPathsError
		if errors.As(e, &conflict) {
			continue
		}
		fatal = append(fatal, e.Error())
	}
	if len(fatal) == 0 {
		return nil
	}
	const show = 5
	more := ""
	if len(fatal) > show {
		more = fmt.Sprintf(" (and %d more)", len(fatal)-show)
		fatal = fatal[:show]
	}
	return fmt.Errorf("%s%s", strings.Join(fatal, "; "), more)
}

// leafErrors flattens kin-openapi's MultiError, including ones wrapped in a
// section error, into the individual problems.
func leafErrors(err error) []error {
	var me openapi3.MultiError
	if errors.As(err, &me) {
		var out []error
		for _, e := range me {
			out = append(out, leafErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// localFilesUnder lets $refs read files in dir or below it, and nothing else.
func localFilesUnder(dir string) openapi3.ReadFromURIFunc {
	return func(_ *openapi3.Loader, u *url.URL) ([]byte, error) {
		if (u.Scheme != "" && u.Scheme != "file") || u.Host != "" {
			return nil, fmt.Errorf("$ref %q: remote references are not loaded; keep referenced files next to the spec", u.Redacted())
		}
		p := filepath.Clean(filepath.FromSlash(u.Path))
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return nil, fmt.Errorf("$ref %q: outside the spec's directory", u.Path)
		}
		return os.ReadFile(p)
	}
}

// index builds the method → path table and the per-operation response sets.
func (s *Spec) index() error {
	s.paths = map[string][]*specPath{}
	if s.doc.Paths == nil {
		return nil
	}
	type seen struct{ path string }
	claimed := map[string]seen{} // "METHOD normalised" → first path
	keys := make([]string, 0, s.doc.Paths.Len())
	for p := range s.doc.Paths.Map() {
		keys = append(keys, p)
	}
	sort.Strings(keys)
	for _, p := range keys {
		item := s.doc.Paths.Value(p)
		norm := normalizeTemplate(p)
		for method, op := range item.Operations() {
			method = strings.ToUpper(method)
			k := method + " " + norm
			if prev, ok := claimed[k]; ok {
				return fmt.Errorf("paths %q and %q both define %s and differ only in parameter names", prev.path, p, method)
			}
			claimed[k] = seen{p}
			o := &operation{method: method, path: p, responses: op.Responses, byRef: map[*openapi3.Response]*response{}}
			if op.Responses != nil {
				for _, code := range op.Responses.Keys() {
					rr := op.Responses.Value(code)
					if rr == nil || rr.Value == nil {
						return fmt.Errorf("%s %s: response %s is not resolved", method, p, code)
					}
					o.byRef[rr.Value] = &response{content: rr.Value.Content}
					for mt, m := range rr.Value.Content {
						if m == nil {
							continue
						}
						entry := &mediaType{json: isJSONMediaType(mt)}
						if m.Schema != nil {
							entry.schema = m.Schema.Value
						}
						s.mtIndex[m] = entry
					}
				}
			}
			s.paths[method] = append(s.paths[method], &specPath{path: p, segs: splitSegments(norm), op: o})
		}
	}
	return nil
}

// Version is the document's "openapi" field, e.g. "3.0.3".
func (s *Spec) Version() string { return s.version }

// File is the path the spec was loaded from.
func (s *Spec) File() string { return s.file }

// Missing reports which routes have no operation in the spec, in the order
// given. `portcullis check` lists them: in enforce mode every response on
// such a route would be refused.
func (s *Spec) Missing(routes []RouteKey) []RouteKey {
	var out []RouteKey
	for _, r := range routes {
		if s.lookup(r.Method, r.Path) == nil {
			out = append(out, r)
		}
	}
	return out
}

// lookup finds the operation for a gateway route, caching the answer. HEAD
// falls back to GET's operation when the spec has no HEAD.
func (s *Spec) lookup(method, template string) *operation {
	key := routeKey{method, template} // a struct, not a joined string: no allocation
	if v, ok := s.cache.Load(key); ok {
		return v.(*operation)
	}
	op := s.match(method, template)
	if op == nil && method == "HEAD" {
		op = s.match("GET", template)
	}
	// Templates come from the config, so the cache stays small; the bound
	// only keeps a caller of Check with arbitrary templates from growing it.
	if s.cached.Add(1) <= maxCachedRoutes {
		s.cache.Store(key, op)
	}
	return op
}

const maxCachedRoutes = 10000

// routeKey is a method and route template, as a map key.
type routeKey struct{ method, template string }

// compile30 builds the compiled tree of every response schema of an
// OpenAPI 3.0 document without writeOnly properties (reading a response as
// a response changes kin-openapi's rules there, and that case keeps kin's
// walk). Schemas shared between operations share their nodes.
func (s *Spec) compile30() {
	c := newCompiler()
	for _, m := range s.mtIndex {
		if m.schema != nil {
			m.fast = c.compile(m.schema)
		}
	}
}

func (s *Spec) mediaFor(m *openapi3.MediaType) *mediaType { return s.mtIndex[m] }

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
