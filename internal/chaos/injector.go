package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-dev/portcullis/internal/config"
)

// HeaderChaos is set on every response an injected fault produced or
// altered: "KIND; id=ID".
const HeaderChaos = "X-Portcullis-Chaos"

// Log keys.
const (
	logIntegration = "integration"
	logRoute       = "route"
	logKind        = "kind"
	logFaultID     = "fault_id"
	logSource      = "source"
)

// TargetKey is the context key of a call's *Target. WithTarget sets it; a
// context type of the caller's own may also answer it from its Value
// method (the gateway's per-request context does, from the call).
type TargetKey struct{}

// Target is what a fault is matched against: the integration name and the
// route template of the call.
type Target struct{ Integration, Route string }

// WithTarget records the integration name and route template of the call
// in ctx; the gateway sets it before the outbound chain runs. A call whose
// context has no target is never hit.
func WithTarget(ctx context.Context, integration, route string) context.Context {
	return context.WithValue(ctx, TargetKey{}, &Target{integration, route})
}

func targetFrom(ctx context.Context) (Target, bool) {
	t, ok := ctx.Value(TargetKey{}).(*Target)
	if !ok || t == nil {
		return Target{}, false
	}
	return *t, true
}

// Option configures an Injector.
type Option func(*Injector)

// WithLogger sends one warning per injection to l (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(i *Injector) { i.log = l } }

// WithRegistry registers portcullis_chaos_injections_total on reg. When reg
// already has it (an Injector rebuilt on reload), the existing counter is
// reused.
func WithRegistry(reg prometheus.Registerer) Option { return func(i *Injector) { i.reg = reg } }

// WithRand replaces the source of probability draws (tests): it must return
// values in [0, 1).
func WithRand(f func() float64) Option { return func(i *Injector) { i.rand = f } }

// WithCheck adds a validation Set runs on every fault, e.g. that the
// integration and route exist in the current config.
func WithCheck(f func(Fault) error) Option { return func(i *Injector) { i.check = f } }

// Injector holds the active faults and applies them to calls. One Injector
// serves every integration: use it as the RoundTripper of one transport
// (next given to NewInjector) or wrap each integration's transport with
// Wrap. It is safe for concurrent use.
type Injector struct {
	next    http.RoundTripper
	clk     func() time.Time
	log     *slog.Logger
	reg     prometheus.Registerer
	rand    func() float64
	check   func(Fault) error
	counter *prometheus.CounterVec

	enabled atomic.Bool
	active  atomic.Int32 // len(faults), read without the lock on the fast path
	mu      sync.Mutex
	faults  []*entry // in creation order
	seq     int
}

type entry struct {
	f    Fault
	hits atomic.Uint64
}

var _ http.RoundTripper = (*Injector)(nil)

// NewInjector returns an Injector in front of next (nil: http.DefaultTransport
// is NOT used; a nil next is for an Injector used only through Wrap).
// Faults are refused unless enabled; clk is the clock for expiry (nil:
// time.Now).
func NewInjector(next http.RoundTripper, enabled bool, clk func() time.Time, opts ...Option) *Injector {
	if clk == nil {
		clk = time.Now
	}
	i := &Injector{next: next, clk: clk, rand: rand.Float64}
	i.enabled.Store(enabled)
	for _, o := range opts {
		o(i)
	}
	if i.log == nil {
		i.log = slog.New(slog.DiscardHandler)
	}
	i.counter = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portcullis_chaos_injections_total",
		Help: "Faults injected into outbound calls by chaos, by integration and kind.",
	}, []string{"integration", "kind"})
	if i.reg != nil {
		if err := i.reg.Register(i.counter); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				if c, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
					i.counter = c
				}
			} else {
				i.log.Error("chaos: injection counter not registered", "cause", err)
			}
		}
	}
	return i
}

// Enabled reports whether faults may be set.
func (i *Injector) Enabled() bool { return i.enabled.Load() }

// SetEnabled turns injection on or off (config reload). Turning it off
// removes every fault.
func (i *Injector) SetEnabled(on bool) {
	i.enabled.Store(on)
	if !on {
		i.mu.Lock()
		i.faults = nil
		i.active.Store(0)
		i.mu.Unlock()
	}
}

// Set adds a fault, or replaces the fault with the same ID, and returns it
// as stored. It fails with ErrDisabled unless chaos is enabled, and with an
// error wrapping ErrInvalid for bad fields.
func (i *Injector) Set(f Fault) (Fault, error) {
	if !i.Enabled() {
		return Fault{}, ErrDisabled
	}
	if err := f.Validate(); err != nil {
		return Fault{}, err
	}
	if i.check != nil {
		if err := i.check(f); err != nil {
			return Fault{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	now := i.clk()
	if !f.Expires.IsZero() && !f.Expires.After(now) {
		return Fault{}, fmt.Errorf("%w: already expired", ErrInvalid)
	}
	if f.Probability == 0 {
		f.Probability = 1
	}
	if f.Source == "" {
		f.Source = "api"
	}
	f.Created, f.Injections = now, 0
	i.mu.Lock()
	defer i.mu.Unlock()
	i.pruneLocked(now)
	if f.ID == "" {
		for {
			i.seq++
			f.ID = "f" + strconv.Itoa(i.seq)
			if i.indexLocked(f.ID) < 0 {
				break
			}
		}
	}
	e := &entry{f: f}
	if k := i.indexLocked(f.ID); k >= 0 {
		i.faults[k] = e
	} else {
		i.faults = append(i.faults, e)
	}
	i.active.Store(int32(len(i.faults)))
	i.log.Warn("chaos fault set", logFaultID, f.ID, logIntegration, f.Integration, logRoute, f.Route,
		logKind, string(f.Kind), "probability", f.Probability, "expires", f.Expires, logSource, f.Source)
	return f, nil
}

// Load replaces the faults that came from the config (Source "config") with
// faults, keeping those set through the API. It fails with ErrDisabled
// when there are faults and chaos is off.
func (i *Injector) Load(faults []*config.Fault) error {
	if len(faults) > 0 && !i.Enabled() {
		return ErrDisabled
	}
	now := i.clk()
	var errs []error
	var add []Fault
	for k, c := range faults {
		if c == nil {
			continue
		}
		f := FromConfig(c, now)
		f.ID = "config-" + strconv.Itoa(k)
		if err := f.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("chaos.faults[%d]: %w", k, err))
			continue
		}
		add = append(add, f)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	i.mu.Lock()
	i.faults = slices.DeleteFunc(i.faults, func(e *entry) bool { return e.f.Source == "config" })
	i.active.Store(int32(len(i.faults)))
	i.mu.Unlock()
	for _, f := range add {
		if _, err := i.Set(f); err != nil {
			errs = append(errs, fmt.Errorf("chaos fault %s: %w", f.ID, err))
		}
	}
	return errors.Join(errs...)
}

// Remove deletes the fault with id, or returns ErrNotFound.
func (i *Injector) Remove(id string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	k := i.indexLocked(id)
	if k < 0 {
		return ErrNotFound
	}
	f := i.faults[k].f
	i.faults = slices.Delete(i.faults, k, k+1)
	i.active.Store(int32(len(i.faults)))
	i.log.Warn("chaos fault removed", logFaultID, id, logIntegration, f.Integration, logKind, string(f.Kind))
	return nil
}

// List returns the active (unexpired) faults in creation order, with
// their injection counts.
func (i *Injector) List() []Fault {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.pruneLocked(i.clk())
	out := make([]Fault, 0, len(i.faults))
	for _, e := range i.faults {
		f := e.f
		f.Injections = e.hits.Load()
		out = append(out, f)
	}
	return out
}

func (i *Injector) indexLocked(id string) int {
	return slices.IndexFunc(i.faults, func(e *entry) bool { return e.f.ID == id })
}

func (i *Injector) pruneLocked(now time.Time) {
	i.faults = slices.DeleteFunc(i.faults, func(e *entry) bool {
		return !e.f.Expires.IsZero() && !now.Before(e.f.Expires)
	})
	i.active.Store(int32(len(i.faults)))
}

// matching returns the faults that hit this call: each matching fault is
// drawn against its probability independently.
func (i *Injector) matching(t Target) []*entry {
	now := i.clk()
	i.mu.Lock()
	defer i.mu.Unlock()
	var hit []*entry
	for _, e := range i.faults {
		f := &e.f
		if f.Integration != t.Integration || (f.Route != "" && f.Route != t.Route) {
			continue
		}
		if !f.Expires.IsZero() && !now.Before(f.Expires) {
			continue
		}
		if f.Probability >= 1 || i.rand() < f.Probability {
			hit = append(hit, e)
		}
	}
	return hit
}

// Wrap returns a RoundTripper that applies this Injector's faults in front
// of next; the gateway wraps each integration's base transport with it.
func (i *Injector) Wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripper{i: i, next: next}
}

type roundTripper struct {
	i    *Injector
	next http.RoundTripper
}

func (rt roundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	return rt.i.roundTrip(rt.next, r)
}

// RoundTrip applies the faults that hit this call, in creation order:
// latency faults add up, and the first fault of any other kind decides
// the outcome.
func (i *Injector) RoundTrip(r *http.Request) (*http.Response, error) {
	return i.roundTrip(i.next, r)
}

func (i *Injector) roundTrip(next http.RoundTripper, r *http.Request) (*http.Response, error) {
	if next == nil {
		next = noTransport{}
	}
	if i.active.Load() == 0 || !i.Enabled() {
		return next.RoundTrip(r)
	}
	return i.inject(next, r)
}

// inject is roundTrip with faults active: a function of its own so that
// roundTrip's frame, under every call the vendor holds, stays small.
//
//go:noinline
func (i *Injector) inject(next http.RoundTripper, r *http.Request) (*http.Response, error) {
	t, ok := targetFrom(r.Context())
	if !ok {
		return next.RoundTrip(r)
	}
	var final *entry
	for _, e := range i.matching(t) {
		if e.f.Kind == Latency {
			i.record(e, t)
			if err := sleep(r.Context(), e.f.Latency); err != nil {
				closeBody(r)
				return nil, err
			}
			continue
		}
		if final == nil {
			final = e
		}
	}
	if final == nil {
		return next.RoundTrip(r)
	}
	i.record(final, t)
	return apply(final.f, next, r)
}

func (i *Injector) record(e *entry, t Target) {
	e.hits.Add(1)
	i.counter.WithLabelValues(t.Integration, string(e.f.Kind)).Inc()
	i.log.Warn("chaos fault injected", logFaultID, e.f.ID, logIntegration, t.Integration,
		logRoute, t.Route, logKind, string(e.f.Kind))
}

func sleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func closeBody(r *http.Request) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
}

// apply carries out one non-latency fault.
func apply(f Fault, next http.RoundTripper, r *http.Request) (*http.Response, error) {
	mark := string(f.Kind) + "; id=" + f.ID
	switch f.Kind {
	case ErrorStatus:
		closeBody(r)
		body := `{"error":"vendor unavailable (injected by portcullis chaos)"}`
		return synthetic(r, f.statusOrDefault(), mark, body, nil), nil
	case Revoked:
		closeBody(r)
		body := `{"error":"invalid_token","error_description":"the API key has been revoked (injected by portcullis chaos)"}`
		h := http.Header{"Www-Authenticate": {`Bearer error="invalid_token"`}}
		return synthetic(r, http.StatusUnauthorized, mark, body, h), nil
	case Reset:
		closeBody(r)
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	case Hang:
		closeBody(r)
		<-r.Context().Done()
		return nil, r.Context().Err()
	}
	resp, err := next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Header.Set(HeaderChaos, mark)
	switch f.Kind {
	case Truncate:
		return truncate(resp)
	case Corrupt:
		return corrupt(resp)
	case Oversize:
		return oversize(resp, f.Size), nil
	case Schema:
		return breakSchema(resp)
	}
	return resp, nil
}

func synthetic(r *http.Request, status int, mark, body string, h http.Header) *http.Response {
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set(HeaderChaos, mark)
	return &http.Response{
		Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h,
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r,
	}
}

// noTransport fails calls when an Injector has no next transport.
type noTransport struct{}

func (noTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	closeBody(r)
	return nil, errors.New("chaos: injector has no next transport")
}
