package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"

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
	var buf *[]byte
	if resp.Body != nil && resp.Body != http.NoBody {
		var err error
		buf, err = readResponse(resp.Body, resp.ContentLength, in.maxResp)
		resp.Body.Close()
		if err != nil {
			putBodyBuf(buf)
			return err
		}
		if int64(len(*buf)) > in.maxResp {
			putBodyBuf(buf)
			return errResponseTooLarge
		}
		body = *buf
	}
	viol := in.validator.Check(resp.Request.Method, ob.rec.Route, resp.StatusCode, resp.Header, body)
	if viol != nil {
		ob.rec.Validation = viol.Detail()
		if in.validator.Enforcing() {
			putBodyBuf(buf)
			return viol.Problem()
		}
	}
	vb := &validatedBody{buf: buf}
	vb.r.Reset(body)
	resp.Body = vb
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return nil
}

// Response bodies read for validation are read into pooled buffers: at
// 2 KB a call, the buffer was most of what enforce allocated over off, and
// with a loaded spec in the heap every allocated byte costs collector time.
// Check keeps nothing of the body (the tape drops it, drift and violations
// copy what they keep), so the buffer is free again once the caller's copy
// of the body is done, when ReverseProxy closes it.
var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// maxPooledBody bounds the buffers kept for reuse; bigger bodies are left
// to the collector.
const maxPooledBody = 64 << 10

func putBodyBuf(b *[]byte) {
	if b == nil || cap(*b) > maxPooledBody {
		return
	}
	*b = (*b)[:0]
	bodyBufs.Put(b)
}

// validatedBody is a checked body handed on to the caller. Close gives its
// buffer back to the pool; a Read after Close (or racing it) sees EOF,
// never the bytes of the call that reuses the buffer.
type validatedBody struct {
	mu  sync.Mutex
	r   bytes.Reader
	buf *[]byte
}

func (b *validatedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.r.Read(p)
}

func (b *validatedBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf != nil {
		b.r.Reset(nil)
		putBodyBuf(b.buf)
		b.buf = nil
	}
	return nil
}

// readResponse reads r to its end, or to one byte past max, into a pooled
// buffer. A declared length within the limit sizes the buffer once (io.ReadAll
// would start at 512 bytes and copy the body again at every doubling); the
// length is only a hint, what r delivers decides.
func readResponse(r io.Reader, declared, max int64) (*[]byte, error) {
	bp := bodyBufs.Get().(*[]byte)
	b := (*bp)[:0]
	if declared > 0 && declared <= max && int64(cap(b)) < declared+1 {
		b = make([]byte, 0, declared+1) // room to see EOF without growing
	}
	lr := io.LimitReader(r, max+1)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF || err != nil {
			*bp = b
			if err == io.EOF {
				err = nil
			}
			return bp, err
		}
	}
}
