package fallback

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// ErrNotCacheable is matched by Put's refusals: not a GET, not a 2xx
// answer, marked no-store (or private while shared), or a body over the limit.
var ErrNotCacheable = errors.New("response not cacheable")

// DefaultStaleMaxBody is the largest body the stale cache keeps.
const DefaultStaleMaxBody = 1 << 20

// DefaultStaleHeaders are the response headers kept with a cached entry.
var DefaultStaleHeaders = []string{"Content-Type", "Content-Encoding", "Content-Language", "ETag", "Last-Modified"}

// StaleKey identifies the request a cached response answers.
type StaleKey struct {
	Integration string
	// Caller is ignored when the cache is shared (StaleConfig.Shared).
	Caller string
	Method string
	Path   string
	Query  string
}

// StaleConfig configures one integration's stale cache.
type StaleConfig struct {
	// StaleFor is how long after it was stored an entry may be served.
	StaleFor time.Duration
	// Shared lets callers see each other's cached responses (share_stale);
	// off, each caller only ever gets responses to its own requests.
	Shared bool
	// MaxBodyBytes bounds the bodies kept; 0 means DefaultStaleMaxBody.
	MaxBodyBytes int64
	// Headers is the allowlist of response headers kept; nil means DefaultStaleHeaders.
	Headers []string
}

// Entry is one cached response.
type Entry struct {
	Status int         `json:"status"`
	Header http.Header `json:"header,omitempty"`
	Body   []byte      `json:"body,omitempty"`
	Stored time.Time   `json:"stored"`
}

// StaleCache keeps the last good response to each GET in a store.KV (so
// replicas sharing Redis share it), and gives it back for up to StaleFor
// when the vendor fails or the breaker is open.
type StaleCache struct {
	kv  store.KV
	cfg StaleConfig
	clk clock.Clock
}

// NewStaleCache returns a StaleCache; a nil clock means the system clock.
func NewStaleCache(kv store.KV, cfg StaleConfig, clk clock.Clock) *StaleCache {
	if clk == nil {
		clk = clock.System()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultStaleMaxBody
	}
	if cfg.Headers == nil {
		cfg.Headers = DefaultStaleHeaders
	}
	return &StaleCache{kv: kv, cfg: cfg, clk: clk}
}

// storeKey hashes the request's identity so keys stay short and no field
// can be crafted to collide with another's (the parts are length-prefixed).
func (c *StaleCache) storeKey(k StaleKey) string {
	caller := k.Caller
	if c.cfg.Shared {
		caller = ""
	}
	h := sha256.New()
	for _, part := range []string{caller, k.Method, k.Path, k.Query} {
		fmt.Fprintf(h, "%d:%s", len(part), part)
	}
	return "stale:" + k.Integration + ":" + hex.EncodeToString(h.Sum(nil))
}

// Cacheable reports whether a response to method may be stored: a GET
// answered 2xx (not 206), not marked no-store, and not marked private
// when the cache is shared.
func (c *StaleCache) Cacheable(method string, status int, h http.Header) bool {
	if method != http.MethodGet || status < 200 || status > 299 || status == http.StatusPartialContent {
		return false
	}
	for _, v := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			d, _, _ = strings.Cut(d, "=")
			if d == "no-store" || (c.cfg.Shared && d == "private") {
				return false
			}
		}
	}
	return true
}

// Put stores e as the answer to k (only allowlisted headers are kept,
// Stored defaults to now), or returns an error matching ErrNotCacheable.
func (c *StaleCache) Put(ctx context.Context, k StaleKey, e *Entry) error {
	if !c.Cacheable(k.Method, e.Status, e.Header) {
		return fmt.Errorf("stale cache: %w: %s answered %d", ErrNotCacheable, k.Method, e.Status)
	}
	if int64(len(e.Body)) > c.cfg.MaxBodyBytes {
		return fmt.Errorf("stale cache: %w: body over %d bytes", ErrNotCacheable, c.cfg.MaxBodyBytes)
	}
	kept := Entry{Status: e.Status, Header: allowHeaders(e.Header, c.cfg.Headers), Body: e.Body, Stored: e.Stored}
	if kept.Stored.IsZero() {
		kept.Stored = c.clk.Now()
	}
	b, err := json.Marshal(kept)
	if err != nil {
		return fmt.Errorf("stale cache: encoding entry: %w", err)
	}
	ttl := c.cfg.StaleFor - c.clk.Now().Sub(kept.Stored)
	if ttl <= 0 {
		return nil // already too old to ever be served
	}
	if err := c.kv.Set(ctx, c.storeKey(k), b, ttl); err != nil {
		return fmt.Errorf("stale cache: storing entry: %w", err)
	}
	return nil
}

// Get returns the entry stored for k and its age, if one is no older than
// StaleFor. A store failure reads as a miss.
func (c *StaleCache) Get(ctx context.Context, k StaleKey) (e *Entry, age time.Duration, ok bool) {
	b, err := c.kv.Get(ctx, c.storeKey(k))
	if err != nil {
		return nil, 0, false
	}
	e = new(Entry)
	if err := json.Unmarshal(b, e); err != nil {
		return nil, 0, false
	}
	age = max(c.clk.Now().Sub(e.Stored), 0)
	if age > c.cfg.StaleFor {
		return nil, 0, false
	}
	return e, age, true
}

// Serve writes e to w as a stale answer: its status, kept headers and body,
// plus X-Portcullis-Fallback: stale and Age (whole seconds).
func (e *Entry) Serve(w http.ResponseWriter, age time.Duration) {
	h := w.Header()
	for k, vs := range e.Header {
		h[k] = append([]string(nil), vs...)
	}
	h.Set(HeaderFallback, "stale")
	h.Set("Age", strconv.FormatInt(int64(age/time.Second), 10))
	h.Set("Content-Length", strconv.Itoa(len(e.Body)))
	w.WriteHeader(e.Status)
	_, _ = w.Write(e.Body)
}

// Capture arranges for resp to be stored under k once its body has been
// read to the end and closed, if it is cacheable and its body fits. The
// caller streams resp.Body as usual; Capture only keeps a bounded copy.
// Storing uses a context detached from ctx's cancellation.
func (c *StaleCache) Capture(ctx context.Context, k StaleKey, resp *http.Response) {
	if !c.Cacheable(k.Method, resp.StatusCode, resp.Header) || resp.ContentLength > c.cfg.MaxBodyBytes {
		return
	}
	resp.Body = &capture{
		ReadCloser: resp.Body, c: c, ctx: context.WithoutCancel(ctx), key: k,
		entry: Entry{Status: resp.StatusCode, Header: resp.Header.Clone()},
	}
}

type capture struct {
	io.ReadCloser
	c        *StaleCache
	ctx      context.Context
	key      StaleKey
	entry    Entry
	buf      bytes.Buffer
	eof      bool
	overflow bool
	done     bool
}

func (cp *capture) Read(p []byte) (int, error) {
	n, err := cp.ReadCloser.Read(p)
	if !cp.overflow {
		if int64(cp.buf.Len()+n) > cp.c.cfg.MaxBodyBytes {
			cp.overflow = true
			cp.buf = bytes.Buffer{}
		} else {
			cp.buf.Write(p[:n])
		}
	}
	if errors.Is(err, io.EOF) {
		cp.eof = true
	}
	return n, err
}

func (cp *capture) Close() error {
	err := cp.ReadCloser.Close()
	if cp.eof && !cp.overflow && !cp.done {
		cp.done = true
		cp.entry.Body = cp.buf.Bytes()
		_ = cp.c.Put(cp.ctx, cp.key, &cp.entry)
	}
	return err
}

// allowHeaders copies the allowlisted headers of h.
func allowHeaders(h http.Header, allow []string) http.Header {
	out := http.Header{}
	for _, name := range allow {
		if vs := h.Values(name); len(vs) > 0 {
			out[http.CanonicalHeaderKey(name)] = append([]string(nil), vs...)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
