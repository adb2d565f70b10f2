package dashboard

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/sla"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// SLA month to date is computed from the usage records the gateway keeps
// for audit (store.Usage), so it survives restarts and covers every
// replica sharing the store. What counts as a call, a failure and a latency
// sample is package sla's, the same computation `portcullis audit` reports.
const (
	// slaSettle is how far behind now records are considered complete:
	// usage records are written in batches after the call ends, so the
	// last minutes are re-scanned on every refresh rather than folded in.
	slaSettle = 2 * time.Minute
	// slaRefreshEvery bounds how often the store is scanned.
	slaRefreshEvery = 10 * time.Second
	// slaScanTimeout bounds one scan.
	slaScanTimeout = 2 * time.Minute
)

// SLAStatus is one integration's measured availability and p99 latency,
// month to date (UTC), against its vendor.sla block.
type SLAStatus struct {
	Since        time.Time `json:"since"`
	Calls        uint64    `json:"calls"`
	Failed       uint64    `json:"failed"`
	Availability float64   `json:"availability_pct"` // 100 when there were no calls
	P99MS        float64   `json:"p99_ms"`
	// Targets from vendor.sla; zero when the config sets none.
	TargetUptime float64 `json:"target_uptime_pct,omitempty"`
	TargetP99MS  float64 `json:"target_p99_ms,omitempty"`
	// UptimeMet and P99Met compare against the targets; nil without one.
	UptimeMet *bool `json:"uptime_met,omitempty"`
	P99Met    *bool `json:"p99_met,omitempty"`
}

// slaTracker folds usage records into per-integration aggregates
// incrementally: records older than settled are summed once; the tail
// since then is re-read on each refresh.
type slaTracker struct {
	usage store.Usage
	clk   clock.Clock

	mu       sync.Mutex
	month    time.Time // start of the month the aggregates are for
	settled  time.Time // records before this are in agg
	agg      map[string]*sla.Tally
	result   map[string]sla.Result // agg + tail measured, as of lastScan
	lastScan time.Time
	running  chan struct{} // non-nil while a refresh runs
}

func newSLATracker(u store.Usage, clk clock.Clock) *slaTracker {
	return &slaTracker{usage: u, clk: clk, agg: map[string]*sla.Tally{}, result: map[string]sla.Result{}}
}

// refresh scans what is new since the last refresh. Only one runs at a
// time; concurrent callers wait for it (or their ctx).
func (t *slaTracker) refresh(ctx context.Context) error {
	now := t.clk.Now()
	ms := sla.MonthStart(now, 0)
	t.mu.Lock()
	if t.running != nil {
		ch := t.running
		t.mu.Unlock()
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if !ms.Equal(t.month) {
		t.month, t.settled, t.agg = ms, ms, map[string]*sla.Tally{}
	}
	from := t.settled
	done := make(chan struct{})
	t.running = done
	t.mu.Unlock()

	settle := now.Add(-slaSettle)
	if settle.Before(from) {
		settle = from
	}
	settledPart := map[string]*sla.Tally{}
	tail := map[string]*sla.Tally{}
	scan := func(m map[string]*sla.Tally) func(store.UsageRecord) error {
		return func(r store.UsageRecord) error {
			a := m[r.Integration]
			if a == nil {
				if len(m) >= maxIntegrations {
					return nil
				}
				a = &sla.Tally{}
				m[r.Integration] = a
			}
			a.Add(r)
			return nil
		}
	}
	err := t.usage.ScanUsage(ctx, from, settle, scan(settledPart))
	if err == nil {
		// The tail ends a little after now: a record stamped with its start
		// time may come from a clock slightly ahead of ours.
		err = t.usage.ScanUsage(ctx, settle, now.Add(time.Minute), scan(tail))
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	t.running = nil
	close(done)
	if err != nil {
		return fmt.Errorf("dashboard: sla scan: %w", err)
	}
	if !t.month.Equal(ms) {
		return nil // the month turned while we scanned; the next refresh starts over
	}
	for name, a := range settledPart {
		if t.agg[name] == nil {
			t.agg[name] = &sla.Tally{}
		}
		t.agg[name].Merge(a)
	}
	t.settled = settle
	res := make(map[string]sla.Result, len(t.agg)+len(tail))
	for name, a := range t.agg {
		if tl := tail[name]; tl != nil {
			a = a.Clone()
			a.Merge(tl)
		}
		res[name] = a.Measure()
	}
	for name, a := range tail {
		if _, ok := res[name]; !ok {
			res[name] = a.Measure()
		}
	}
	t.result, t.lastScan = res, now
	return nil
}

// maybeRefresh starts a refresh when the last is older than
// slaRefreshEvery and waits up to wait for it, so a page poll is never held
// up by a long first scan of the month: that one finishes in the
// background and a later poll shows it.
func (t *slaTracker) maybeRefresh(wait time.Duration, log func(error)) {
	t.mu.Lock()
	due := t.running == nil && t.clk.Now().Sub(t.lastScan) >= slaRefreshEvery
	t.mu.Unlock()
	if !due {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), slaScanTimeout)
		defer cancel()
		if err := t.refresh(ctx); err != nil && log != nil {
			log(err)
		}
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
}

// status is name's month-to-date SLA against target (nil: no targets).
func (t *slaTracker) status(name string, target *config.SLA) SLAStatus {
	t.mu.Lock()
	r, ok := t.result[name]
	since := t.month
	t.mu.Unlock()
	if !ok {
		r = (&sla.Tally{}).Measure()
	}
	r = r.Against(sla.TargetOf(target))
	s := SLAStatus{Since: since, Calls: uint64(r.Calls), Failed: uint64(r.Failed),
		Availability: round4(r.Uptime), P99MS: round2(r.P99MS)}
	if r.TargetUptime > 0 {
		s.TargetUptime = r.TargetUptime
		s.UptimeMet = &r.UptimeMet
	}
	if r.TargetP99MS > 0 {
		s.TargetP99MS = round2(r.TargetP99MS)
		s.P99Met = &r.P99Met
	}
	return s
}
