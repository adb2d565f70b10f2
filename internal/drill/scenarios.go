package drill

import (
	"context"
	"fmt"
	"time"

	"github.com/portcullis-dev/portcullis/internal/chaos"
)

// vendorOutage: the vendor answers 503 to every call. Expect the breaker
// to open (status.breaker "open", or calls refused with circuit_open),
// callers answered quickly, a fallback where one is configured, and the
// breaker to close again once the vendor is back.
func (r *runner) vendorOutage(ctx context.Context) ([]Check, error) {
	alertsBefore, alertsOK := r.admin.alerts(ctx)
	// One good call first, as real traffic would have made, so a stale
	// fallback has an answer to serve; then give the cache a moment.
	r.call(ctx)
	if err := sleep(ctx, 200*time.Millisecond); err != nil {
		return nil, err
	}
	_, stop, err := r.inject(ctx, chaos.ErrorStatus)
	if err != nil {
		return nil, err
	}
	var calls []call
	openedAt := -1
	for i := range r.c.Calls {
		calls = append(calls, r.call(ctx))
		if openedAt < 0 {
			if st, err := r.admin.status(ctx, r.c.Integration); err == nil && st.Breaker == "open" {
				openedAt = i + 1
			}
		}
	}
	if err := stop(); err != nil {
		return nil, fmt.Errorf("stop the injected outage (stop it by hand with portcullis chaos stop): %w", err)
	}
	refused := count(calls, func(c call) bool { return c.code == "circuit_open" })
	opened := Check{Protection: BreakerOpened, Required: true, Observable: true, Engaged: openedAt > 0 || refused > 0}
	switch {
	case openedAt > 0:
		opened.Evidence = fmt.Sprintf("status.breaker \"open\" after call %d; %d of %d calls refused with circuit_open", openedAt, refused, len(calls))
	case refused > 0:
		opened.Evidence = fmt.Sprintf("%d of %d calls refused with circuit_open", refused, len(calls))
	default:
		opened.Evidence = fmt.Sprintf("all %d calls reached the failing vendor; status.breaker never \"open\"", len(calls))
	}
	fallbacks := count(calls, func(c call) bool { return c.fallback != "" })
	fallback := Check{Protection: FallbackServed, Observable: true, Engaged: fallbacks > 0,
		Evidence: fmt.Sprintf("%d of %d calls answered with X-Portcullis-Fallback", fallbacks, len(calls))}

	closed := Check{Protection: BreakerClosed, Required: true, Observable: true}
	if !opened.Engaged {
		closed.Evidence = "breaker never opened"
	} else {
		start := time.Now()
		deadline := start.Add(r.c.Recover)
		for {
			probe := r.call(ctx)
			st, err := r.admin.status(ctx, r.c.Integration)
			if err == nil && st.Breaker == "closed" && probe.code == "" && probe.status < 500 {
				closed.Engaged = true
				closed.Evidence = fmt.Sprintf("status.breaker \"closed\" %s after the vendor recovered", time.Since(start).Round(100*time.Millisecond))
				break
			}
			if st.Breaker == "" && err == nil && probe.err == nil && probe.code == "" && probe.status < 500 {
				closed.Engaged = true
				closed.Evidence = fmt.Sprintf("calls succeed again %s after the vendor recovered (no status.breaker reported)", time.Since(start).Round(100*time.Millisecond))
				break
			}
			if time.Now().After(deadline) {
				closed.Evidence = fmt.Sprintf("still %q %s after the vendor recovered", st.Breaker, r.c.Recover)
				break
			}
			if err := sleep(ctx, r.c.Poll); err != nil {
				return nil, err
			}
		}
	}
	alert := Check{Protection: AlertEmitted, Evidence: "no portcullis_alert* metric on /metrics"}
	if after, ok := r.admin.alerts(ctx); ok && alertsOK {
		alert.Observable, alert.Engaged = true, after > alertsBefore
		alert.Evidence = fmt.Sprintf("portcullis_alert* went from %g to %g", alertsBefore, after)
	}
	return []Check{opened, fallback, latencyCheck(calls, r.c.LatencyBound), closed, alert}, nil
}

// badPayload: the vendor answers 200 with a body of the wrong shape.
// Expect every call refused with invalid_upstream_response.
func (r *runner) badPayload(ctx context.Context) ([]Check, error) {
	_, stop, err := r.inject(ctx, chaos.Schema)
	if err != nil {
		return nil, err
	}
	var calls []call
	for range r.c.Calls {
		calls = append(calls, r.call(ctx))
	}
	if err := stop(); err != nil {
		return nil, fmt.Errorf("stop the injected fault (stop it by hand with portcullis chaos stop): %w", err)
	}
	blocked := count(calls, func(c call) bool { return c.code == "invalid_upstream_response" })
	leaked := count(calls, func(c call) bool { return c.err == nil && c.status < 300 })
	return []Check{
		{Protection: InvalidBlocked, Required: true, Observable: true, Engaged: blocked == len(calls),
			Evidence: fmt.Sprintf("%d of %d calls refused with invalid_upstream_response; %d malformed bodies reached the caller", blocked, len(calls), leaked)},
		latencyCheck(calls, r.c.LatencyBound),
	}, nil
}

// revokedKey: the vendor answers 401 to every call. Expect the gateway to
// refresh the credential (status.credential says so, or the fault sees more
// calls than callers saw vendor 401s). credential_unavailable is shown but
// not required: since issue 13 the gateway revokes only when refreshed
// material is rejected for two distinct callers, so the drill's single
// caller normally gets the vendor's own 401.
func (r *runner) revokedKey(ctx context.Context, before Status) ([]Check, error) {
	id, stop, err := r.inject(ctx, chaos.Revoked)
	if err != nil {
		return nil, err
	}
	var calls []call
	for range r.c.Calls {
		calls = append(calls, r.call(ctx))
	}
	hits, hitsOK := r.injections(ctx, id)
	after, statusErr := r.admin.status(ctx, r.c.Integration)
	if err := stop(); err != nil {
		return nil, fmt.Errorf("stop the injected fault (stop it by hand with portcullis chaos stop): %w", err)
	}
	passed401 := count(calls, func(c call) bool { return c.status == 401 && c.code == "" })
	refresh := Check{Protection: RefreshAttempted, Required: true}
	switch {
	case statusErr == nil && (after.CredentialRevoked || after.LastRefresh.After(before.LastRefresh)):
		refresh.Observable, refresh.Engaged = true, true
		refresh.Evidence = fmt.Sprintf("status.credential: revoked=%v, last_refresh %s", after.CredentialRevoked, after.LastRefresh.Format(time.RFC3339))
	case hitsOK:
		refresh.Observable = true
		refresh.Engaged = hits > uint64(passed401)
		refresh.Evidence = fmt.Sprintf("vendor answered 401 %d times; %d of those reached callers unchanged", hits, passed401)
	default:
		refresh.Evidence = "neither status.credential nor the fault's injection count is readable"
	}
	refused := count(calls, func(c call) bool { return c.code == "credential_unavailable" })
	return []Check{
		refresh,
		{Protection: CredentialRefused, Required: false, Observable: true, Engaged: refused > 0,
			Evidence: fmt.Sprintf("%d of %d calls answered credential_unavailable, %d got the vendor's 401", refused, len(calls), passed401)},
		latencyCheck(calls, r.c.LatencyBound),
	}, nil
}
