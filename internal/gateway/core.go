package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/credential"
	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/resilience"
)

// core is the stateful part of an integration: the outbound RoundTripper
// chain with its breaker, limiter, retry budget and bulkhead. It survives a
// reload when the settings it was built from did not change, so a reload
// does not reset an open breaker or refill a drained rate limit.
type core struct {
	key      string
	base     *http.Transport
	chain    http.RoundTripper
	breaker  *resilience.Breaker
	limiter  *resilience.Limiter
	bulkhead *resilience.Bulkhead
	budget   *resilience.Budget
	refresh  func(context.Context) error
}

// cores holds the live cores by integration name, across reloads.
type cores struct {
	mu sync.Mutex
	m  map[string]*core
}

// reloadKey names everything a core is built from: the Specs it compiles,
// printed by value (conf scalars print their parsed value, not their
// line, so moving a block in the file keeps the core), the resilience
// Settings compiled from the retry, circuit_breaker, rate_limit and limits
// blocks, and the digest of the CA file the egress Policy read (a bundle
// rotated in place gives a new core on the next reload). A setting added
// to one of these Specs is part of the key without touching this function.
func reloadKey(c *config.Integration, s resilience.Settings, eg *egress.Policy) string {
	var cred credential.Spec
	if c.Credential != nil {
		cred = *c.Credential
	}
	return fmt.Sprintf("%s|%+v|%+v|%+v|%+v|ca_sha256=%s", c.Upstream, c.Egress, c.Timeouts, s, cred, eg.CADigest())
}

// buildCore assembles the outbound chain, innermost first:
//
//	base (egress-guarded dialer, verified TLS) → [chaos] → record (times
//	each attempt) → inject (credential on every attempt) → breaker →
//	limiter observer (vendor rate-limit headers) → retry (with budget)
//
// so that every retry passes the breaker and gets a fresh credential.
func buildCore(name string, c *config.Integration, eg *egress.Policy, o *Options, fp string, s resilience.Settings) (*core, error) {
	clk := o.Clock
	k := &core{key: fp}
	base := eg.Transport()
	base.ResponseHeaderTimeout = c.Timeouts.Headers.D
	base.IdleConnTimeout = c.Timeouts.IdleConn.D
	// Keep as many idle vendor connections as calls may be in flight, so a
	// burst does not end in a dial (and a TLS handshake) per call.
	base.MaxIdleConnsPerHost = max(base.MaxIdleConnsPerHost, c.Limits.MaxConcurrent)
	k.base = base
	var chain http.RoundTripper = base
	if o.Faults != nil {
		chain = o.Faults(chain)
	}
	chain = recordTransport{next: chain}
	if c.Credential != nil {
		if o.Credentials == nil {
			return nil, fmt.Errorf("credential: no credential provider configured")
		}
		rt, refresh, err := o.Credentials(name, c.Credential, chain, eg)
		if err != nil {
			return nil, fmt.Errorf("credential: %w", err)
		}
		if rt != nil {
			chain, k.refresh = permanentCredentialErrors{rt}, refresh
		}
	}
	k.breaker = resilience.NewBreaker(name, s.Breaker, chain, clk, func(from, to string) {
		o.Logger.Warn("circuit breaker changed state", "integration", name, "from", from, "to", to)
	})
	k.limiter = resilience.NewLimiter(s.Limiter, clk)
	k.budget = resilience.NewBudget(s.BudgetRatio, 10*time.Second, 1, clk)
	k.bulkhead = resilience.NewBulkhead(s.MaxConcurrent)
	k.chain = resilience.NewRetry(s.Retry, k.budget, k.limiter.Observing(k.breaker), clk)
	return k, nil
}

// get returns the live core for name when its reload key matches, else
// builds a new one. The new map is only committed by commit, after the
// whole config compiled.
func (cs *cores) get(name, fp string) *core {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if k, ok := cs.m[name]; ok && k.key == fp {
		return k
	}
	return nil
}

func (cs *cores) commit(m map[string]*core) (dropped []*core) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for name, k := range cs.m {
		if m[name] != k {
			dropped = append(dropped, k)
		}
	}
	cs.m = m
	return dropped
}

// permanentCredentialErrors marks credential failures as not retryable:
// the credential layer already refreshes once and backs off on its own.
type permanentCredentialErrors struct{ next http.RoundTripper }

func (p permanentCredentialErrors) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := p.next.RoundTrip(r)
	if err != nil && errors.Is(err, credential.ErrUnavailable) {
		return resp, permanentError{err}
	}
	return resp, err
}

type permanentError struct{ error }

func (permanentError) Permanent() bool { return true }
func (e permanentError) Unwrap() error { return e.error }
