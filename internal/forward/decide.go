package forward

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/portcullis-dev/portcullis/internal/egress"
)

// Mode is an integration's forward-proxy rollout mode (`proxy.mode`).
type Mode string

// Rollout modes, from strictest to loosest.
const (
	// ModeEnforce allows only host:ports on the integration's egress allowlist.
	ModeEnforce Mode = "enforce"
	// ModeReport allows any host:port to the integration's callers, and logs
	// (and counts) would_deny with the reason enforce would have refused.
	ModeReport Mode = "report"
	// ModeOpen allows any host:port to the integration's callers, silently.
	ModeOpen Mode = "open"
)

// Verdicts, as logged under "decision" and used as the metrics label.
const (
	VerdictAllow  = "allow"  // on the allowlist of an integration the caller may use
	VerdictReport = "report" // not on it, let through by a report-mode integration
	VerdictOpen   = "open"   // not on it, let through by an open-mode integration
	VerdictDeny   = "deny"
)

// Args are the inputs of one decision. A struct keeps Decide's signature
// stable as inputs are added.
type Args struct {
	Caller string
	Host   string // canonical: lower-case name or IP text, as parseAuthority returns
	Port   string
}

// Decision is the outcome of Decide for an allowed target.
type Decision struct {
	Verdict     string // VerdictAllow, VerdictReport or VerdictOpen
	Integration string // whose egress address rules and limits apply
	// WouldDeny is why enforce mode would have refused (report mode only).
	WouldDeny string

	in *integ
}

// Refusal reasons of Decide, matched with errors.Is.
var (
	// ErrNotProxyCaller: the caller may not use any proxy-enabled integration.
	ErrNotProxyCaller = errors.New("caller may not use the forward proxy")
	// ErrNotAllowed: the target is on no allowlist the caller may use, and
	// no report- or open-mode integration lets it through.
	ErrNotAllowed = errors.New("target not on the egress allowlist of any integration the caller may use")
	// ErrOtherIntegration: the target belongs to an integration the caller
	// holds no route on and is not a connect_caller of.
	ErrOtherIntegration = errors.New("target belongs to an integration the caller may not use")
)

// integ is one proxy-enabled integration, compiled.
type integ struct {
	name    string
	mode    Mode
	callers map[string]bool
	policy  *egress.Policy // allowlist + dial-time address guard
	// addrRules are the integration's address rules without its allowlist,
	// to dial targets that report and open modes let through.
	addrRules egress.Config
	// dial is policy.DialContext behind the gateway-listener check, built
	// once: the dialer of tunnels to allow-listed targets.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// transport forwards absolute-form plain-HTTP requests to allow-listed
	// targets (keep-alive pool shared per integration) through dial.
	transport *http.Transport
	// spec is the provisioned proxy block: limits and timeouts are read
	// from it directly, so a new setting needs no copy here.
	spec ProxySpec
	// inspect is the upstream's host:port, the one target of an
	// integration with proxy.inspect (zero without it).
	inspect target
}

// decider holds the proxy-enabled integrations in name order.
type decider struct {
	integs []*integ
}

// compileIntegrations builds an integ for every integration with a
// `proxy:` block. Integrations without one never take part: a tunnel
// bypasses credential injection, route policy and response validation, so
// reaching an integration's hosts that way is opt-in.
func compileIntegrations(integrations map[string]Integration, resolver *net.Resolver, dial dialWrapper) (*decider, error) {
	names := make([]string, 0, len(integrations))
	for n, in := range integrations {
		if in.Proxy != nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	d := &decider{}
	var errs []error
	for _, name := range names {
		c := integrations[name]
		px := *c.Proxy
		px.Provision()
		c.Timeouts.Provision()
		// Tunnels carry the client's own TLS end to end, so only the
		// dialing half of the egress settings applies.
		full := c.Egress.Config(c.Timeouts, resolver).DialOnly()
		pol, err := egress.NewPolicy(full)
		if err != nil {
			errs = append(errs, fmt.Errorf("integrations.%s.egress: %w", name, err))
			continue
		}
		rules := full
		rules.Allow = nil
		in := &integ{
			name:      name,
			mode:      Mode(px.Mode),
			callers:   map[string]bool{},
			policy:    pol,
			addrRules: rules,
			spec:      px,
		}
		if px.Inspect {
			if in.inspect, err = inspectTarget(c.Upstream); err != nil {
				errs = append(errs, fmt.Errorf("integrations.%s.proxy.inspect: %w", name, err))
				continue
			}
		}
		for _, cl := range c.RouteCallers {
			in.callers[cl] = true
		}
		for _, cl := range px.ConnectCallers {
			in.callers[cl] = true
		}
		in.dial = dial(pol.DialContext)
		in.transport = plainTransport(in.dial)
		in.transport.ResponseHeaderTimeout = c.Timeouts.Headers.D
		d.integs = append(d.integs, in)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return d, nil
}

// Decide picks the integration a target is reached through, or refuses:
//
//  1. the first integration (by name) the caller may use whose allowlist
//     holds host:port: VerdictAllow, whatever its mode;
//  2. else the first open-mode integration the caller may use: VerdictOpen;
//  3. else the first report-mode one: VerdictReport, with WouldDeny;
//  4. else a refusal (ErrOtherIntegration, ErrNotAllowed or
//     ErrNotProxyCaller).
//
// A caller "may use" an integration when it holds at least one route on it
// or is in its proxy.connect_callers. Modes only widen what an
// integration's own callers may reach; they never let other callers in.
// Decide only looks at names and ports: the resolved address is checked at
// dial time, in every mode.
func (d *decider) Decide(a Args) (Decision, error) {
	var open, report *integ
	eligible := false
	var other string
	for _, in := range d.integs {
		mayUse := in.callers[a.Caller]
		listed := in.policy.AllowsHostPort(a.Host, a.Port)
		switch {
		case mayUse && listed:
			return Decision{Verdict: VerdictAllow, Integration: in.name, in: in}, nil
		case mayUse:
			eligible = true
			if in.mode == ModeOpen && open == nil {
				open = in
			}
			if in.mode == ModeReport && report == nil {
				report = in
			}
		case listed && other == "":
			other = in.name
		}
	}
	why := ErrNotAllowed
	if other != "" {
		why = fmt.Errorf("%w (%s)", ErrOtherIntegration, other)
	}
	switch {
	case open != nil:
		return Decision{Verdict: VerdictOpen, Integration: open.name, in: open}, nil
	case report != nil:
		return Decision{Verdict: VerdictReport, Integration: report.name, WouldDeny: why.Error(), in: report}, nil
	case !eligible:
		return Decision{}, ErrNotProxyCaller
	}
	return Decision{}, why
}

// dialWrapper adds the gateway's own checks (no connection to its own
// listeners) around an egress dial function.
type dialWrapper func(func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error)

// plainTransport is the transport for absolute-form requests: plain HTTP
// only (the caller would use CONNECT for https), no proxy from the
// environment, no HTTP/2, no compression negotiated on the caller's behalf.
func plainTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       egress.DefaultIdleConnTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}
