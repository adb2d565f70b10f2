package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/validate"
)

// driftLearn is how many responses a route without a spec learns from
// before field changes count as drift.
const driftLearn = 100

// specCache loads each OpenAPI file once per config load.
type specCache map[string]*validate.Spec

func specPath(cfg *config.Config, p string) string {
	if filepath.IsAbs(p) || cfg.Path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(cfg.Path), p)
}

func (sc specCache) load(path string) (*validate.Spec, error) {
	if s, ok := sc[path]; ok {
		return s, nil
	}
	s, err := validate.LoadSpec(path)
	if err != nil {
		return nil, err
	}
	sc[path] = s
	return s, nil
}

// buildValidator compiles an integration's validate block (nil when off).
func buildValidator(name string, cfg *config.Config, c *config.Integration, o *Options, specs specCache) (*validate.Validator, error) {
	v := c.Validate
	if v == nil || v.Mode == "off" || v.OpenAPI == "" {
		return nil, nil
	}
	spec, err := specs.load(specPath(cfg, v.OpenAPI))
	if err != nil {
		return nil, fmt.Errorf("validate.openapi: %w", err)
	}
	val := validate.New(spec, validate.Mode(v.Mode), v.MaxDepth, c.Limits.MaxResponseBytes.N)
	return val.With(validate.Observers{
		Integration: name,
		Metrics:     o.ValidationMetrics,
		Drift:       validate.NewDrift(spec, driftLearn, o.emit, validate.WithIntegration(name), validate.WithDriftMetrics(o.ValidationMetrics)),
		Emit:        o.emit,
	}), nil
}

// missingOperations lists routes of enforce-mode integrations that have no
// operation in their spec: every call to them would be refused.
func missingOperations(cfg *config.Config, specs specCache) error {
	var errs []error
	for _, name := range cfg.Names() {
		c := cfg.Integrations[name]
		if c.Validate == nil || c.Validate.Mode != "enforce" || c.Validate.OpenAPI == "" {
			continue
		}
		spec, err := specs.load(specPath(cfg, c.Validate.OpenAPI))
		if err != nil {
			continue // reported by compile
		}
		keys := make([]validate.RouteKey, 0, len(c.Routes))
		for _, r := range c.Routes {
			keys = append(keys, validate.RouteKey{Method: r.Method, Path: r.Path})
		}
		for _, m := range spec.Missing(keys) {
			errs = append(errs, fmt.Errorf("integrations.%s.routes: %s %s has no operation in %s, so validate.mode enforce would refuse every response", name, m.Method, m.Path, c.Validate.OpenAPI))
		}
	}
	return errors.Join(errs...)
}

// validateResponse reads the (bounded) body, checks it against the spec
// and either fails closed (enforce) or passes it on (report).
func (in *integration) validateResponse(resp *http.Response, ob *outbound) error {
	var body []byte
	if resp.Body != nil && resp.Body != http.NoBody {
		b, err := readResponse(resp.Body, resp.ContentLength, in.maxResp)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if int64(len(b)) > in.maxResp {
			return errResponseTooLarge
		}
		body = b
	}
	viol := in.validator.Check(resp.Request.Method, ob.rec.Route, resp.StatusCode, resp.Header, body)
	if viol != nil {
		ob.rec.Validation = viol.Detail()
		if in.validator.Enforcing() {
			return viol.Problem()
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return nil
}

// readResponse reads r to its end, or to one byte past max. A declared length
// within the limit sizes the buffer once (io.ReadAll would start at 512
// bytes and copy the body again at every doubling); the length is only a
// hint, what r delivers decides.
func readResponse(r io.Reader, declared, max int64) ([]byte, error) {
	size := int64(512)
	if declared > 0 && declared <= max {
		size = declared + 1 // room to see EOF without growing
	}
	b := make([]byte, 0, size)
	lr := io.LimitReader(r, max+1)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}
