package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/chaos"
	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

// Scenarios lists the drills by name.
var Scenarios = []string{"vendor-outage", "bad-payload", "revoked-key"}

// ErrUnknownScenario is returned for a scenario name not in Scenarios.
var ErrUnknownScenario = errors.New("drill: unknown scenario")

// Protections a drill can report on.
const (
	BreakerOpened     = "breaker opened"
	BreakerClosed     = "breaker closed"
	FallbackServed    = "fallback served"
	InvalidBlocked    = "invalid body blocked"
	RefreshAttempted  = "credential refresh attempted"
	CredentialRefused = "credential_unavailable returned"
	AlertEmitted      = "alert emitted"
	LatencyBounded    = "caller latency bounded"
)

// Config says where and how to drill.
type Config struct {
	// Gateway is the caller listener, Admin the admin listener (base URLs).
	Gateway, Admin string
	AdminToken     secret.Value
	// CallerToken is sent as Authorization: Bearer on every call.
	CallerToken secret.Value
	Integration string
	// Method and Path are the call made N times: Path is the vendor path
	// (the gateway URL is Gateway/Integration/Path).
	Method, Path string
	// Route is the route template the fault is limited to (empty: every
	// route of the integration).
	Route string
	// Calls made while the fault is active (default 30).
	Calls int
	// LatencyBound is the slowest caller latency that passes (default 2s).
	LatencyBound time.Duration
	// Recover bounds the wait for the breaker to close (default 60s).
	Recover time.Duration
	// Poll is the pause between probes while recovering (default 250ms).
	Poll time.Duration
	// Require makes optional protections (fallback served, alert emitted)
	// required.
	Require []string
	// HTTP is the client (nil: one with a 30s timeout).
	HTTP *http.Client
}

func (c *Config) defaults() {
	if c.Calls <= 0 {
		c.Calls = 30
	}
	if c.LatencyBound <= 0 {
		c.LatencyBound = 2 * time.Second
	}
	if c.Recover <= 0 {
		c.Recover = time.Minute
	}
	if c.Poll <= 0 {
		c.Poll = 250 * time.Millisecond
	}
	if c.Method == "" {
		c.Method = http.MethodGet
	}
	if c.HTTP == nil {
		// No proxy from the environment: the caller and admin tokens go
		// to the addresses the operator gave, and nowhere else.
		c.HTTP = &http.Client{Timeout: 30 * time.Second, Transport: egress.CLITransport()}
	}
}

// Check is one protection's outcome.
type Check struct {
	Protection string `json:"protection"`
	Required   bool   `json:"required"`
	// Observable is false when the gateway exposes nothing to tell.
	Observable bool   `json:"observable"`
	Engaged    bool   `json:"engaged"`
	Evidence   string `json:"evidence"`
}

// Passed reports whether the check does not fail the drill.
func (c Check) Passed() bool { return c.Engaged || !c.Required }

// Result is one drill run.
type Result struct {
	Scenario    string  `json:"scenario"`
	Gateway     string  `json:"gateway"`
	Integration string  `json:"integration"`
	Call        string  `json:"call"`
	Calls       int     `json:"calls"`
	Checks      []Check `json:"checks"`
	Pass        bool    `json:"pass"`
}

// call is what one gateway call returned.
type call struct {
	status   int
	code     string // X-Portcullis-Error
	fallback string // X-Portcullis-Fallback
	latency  time.Duration
	err      error
}

type runner struct {
	c     Config
	admin adminClient
	chaos *chaos.Client
}

// Run runs the named scenario. It returns an error (wrapping ErrGateway
// or chaos.ErrAdmin) when the drill could not be carried out at all; a
// protection that did not engage is a failed Check, not an error.
func Run(ctx context.Context, scenario string, c Config) (Result, error) {
	c.defaults()
	r := &runner{c: c, admin: adminClient{c.Admin, c.AdminToken, c.HTTP},
		chaos: &chaos.Client{Admin: c.Admin, Token: c.AdminToken, HTTP: c.HTTP}}
	res := Result{Scenario: scenario, Gateway: c.Gateway, Integration: c.Integration, Call: c.Method + " " + c.Path, Calls: c.Calls}
	st, err := r.admin.status(ctx, c.Integration)
	if err != nil {
		return res, err
	}
	if !st.Found {
		return res, fmt.Errorf("%w: integration %q is not in GET /api/v1/integrations", ErrGateway, c.Integration)
	}
	var checks []Check
	switch scenario {
	case "vendor-outage":
		checks, err = r.vendorOutage(ctx)
	case "bad-payload":
		checks, err = r.badPayload(ctx)
	case "revoked-key":
		checks, err = r.revokedKey(ctx, st)
	default:
		return res, fmt.Errorf("%w %q: want one of %s", ErrUnknownScenario, scenario, strings.Join(Scenarios, ", "))
	}
	if err != nil {
		return res, err
	}
	res.Checks, res.Pass = checks, true
	for i := range res.Checks {
		if slices.Contains(c.Require, res.Checks[i].Protection) {
			res.Checks[i].Required = true
		}
		res.Pass = res.Pass && res.Checks[i].Passed()
	}
	return res, nil
}

// inject starts a fault for the drill and returns a stop function that
// always runs (with its own context, so an interrupted drill still cleans
// up) and the fault's id.
func (r *runner) inject(ctx context.Context, kind chaos.Kind) (string, func() error, error) {
	f, err := r.chaos.Start(ctx, chaos.Fault{Integration: r.c.Integration, Route: r.c.Route, Kind: kind}, 10*time.Minute)
	if err != nil {
		return "", nil, err
	}
	stop := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return r.chaos.Stop(sctx, f.ID)
	}
	return f.ID, stop, nil
}

func (r *runner) injections(ctx context.Context, id string) (uint64, bool) {
	l, err := r.chaos.List(ctx)
	if err != nil {
		return 0, false
	}
	for _, f := range l.Faults {
		if f.ID == id {
			return f.Injections, true
		}
	}
	return 0, false
}

func (r *runner) call(ctx context.Context) call {
	u := strings.TrimSuffix(r.c.Gateway, "/") + "/" + r.c.Integration + r.c.Path
	req, err := http.NewRequestWithContext(ctx, r.c.Method, u, nil)
	if err != nil {
		return call{err: err}
	}
	if !r.c.CallerToken.IsZero() {
		req.Header.Set("Authorization", "Bearer "+r.c.CallerToken.Reveal())
	}
	start := time.Now()
	resp, err := r.c.HTTP.Do(req)
	if err != nil {
		return call{err: err, latency: time.Since(start)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 16<<20))
	_ = resp.Body.Close()
	return call{status: resp.StatusCode, code: resp.Header.Get("X-Portcullis-Error"),
		fallback: resp.Header.Get("X-Portcullis-Fallback"), latency: time.Since(start)}
}

func latencyCheck(calls []call, bound time.Duration) Check {
	var slowest time.Duration
	for _, c := range calls {
		slowest = max(slowest, c.latency)
	}
	return Check{Protection: LatencyBounded, Required: true, Observable: true, Engaged: slowest <= bound,
		Evidence: fmt.Sprintf("slowest of %d calls took %s (bound %s)", len(calls), slowest.Round(10*time.Microsecond), bound)}
}

func count(calls []call, pred func(call) bool) int {
	n := 0
	for _, c := range calls {
		if pred(c) {
			n++
		}
	}
	return n
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
