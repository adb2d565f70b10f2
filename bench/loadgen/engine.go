package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// plan is one load run against one target.
type plan struct {
	name, phase string
	target      *url.URL
	auth        string // sent as Authorization: Bearer <auth>; empty: none
	conns       int
	// rate > 0 makes the run open-loop: request i is due at start + i/rate
	// whatever happened to earlier ones, and its latency is counted from
	// when it was due, not from when a connection was free to send it. So a
	// server stall shows up in the percentiles instead of silently slowing
	// the generator down (coordinated omission).
	rate             float64
	warmup, duration time.Duration
	// ramp spreads the workers' first requests evenly over this long
	// (closed loop), so that thousands of calls do not all open vendor
	// connections in the same millisecond and overflow listen backlogs.
	ramp        time.Duration
	timeout     time.Duration
	maxSamples  int
	serverPID   int
	upstreamPID int
}

// worker owns one connection and its share of the samples.
type worker struct {
	c        *client
	lat      []time.Duration
	max      int
	count    int64
	errs     int64
	errKinds map[string]int
}

func (w *worker) record(d time.Duration, err error) {
	w.count++
	if err != nil {
		w.errs++
		if len(w.errKinds) < 32 {
			w.errKinds[errorKind(err)]++
		} else {
			w.errKinds["(other)"]++
		}
		return
	}
	if len(w.lat) < w.max {
		w.lat = append(w.lat, d)
	}
}

// errorKind names a failure without the details that make every instance
// unique (port numbers), so the report can count them.
func errorKind(err error) string {
	var se *statusError
	if errors.As(err, &se) {
		return se.Error()
	}
	stage, _, _ := strings.Cut(err.Error(), ":")
	var op *net.OpError
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return stage + ": timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return stage + ": connection closed by the server"
	case errors.As(err, &op):
		return stage + ": " + op.Err.Error()
	}
	return err.Error()
}

// errNoConnection is returned when not one connection could be opened.
var errNoConnection = errors.New("no connection to the target could be opened")

// execute runs p and returns its result. Every loop ends by the plan's end
// time; a request in flight then ends within p.timeout.
func execute(ctx context.Context, p plan) (*Result, error) {
	if p.conns < 1 {
		return nil, fmt.Errorf("conns must be at least 1, got %d", p.conns)
	}
	perWorker := p.maxSamples / p.conns
	if perWorker < 1 {
		perWorker = 1
	}
	workers := make([]*worker, p.conns)
	for i := range workers {
		workers[i] = &worker{c: newClient(p.target, p.auth, p.timeout), max: perWorker, errKinds: map[string]int{},
			lat: make([]time.Duration, 0, min(perWorker, 4096))}
	}
	watch := newWatch(p)
	dialErrs := predial(ctx, workers)
	if dialErrs == len(workers) {
		return nil, fmt.Errorf("%s: %w", p.target.Host, errNoConnection)
	}

	start := time.Now()
	from := start.Add(p.warmup)
	to := from.Add(p.duration)
	watch.start(from, to)

	var next atomic.Int64
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if p.rate > 0 {
				openLoop(ctx, w, &next, p.rate, start, from, to)
				return
			}
			if p.ramp > 0 {
				time.Sleep(time.Until(start.Add(p.ramp * time.Duration(i) / time.Duration(len(workers)))))
			}
			closedLoop(ctx, w, from, to)
		}()
	}
	wg.Wait()
	for _, w := range workers {
		w.c.close()
	}
	usage := watch.finish()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("interrupted: %w", err)
	}
	return summarizeRun(p, workers, dialErrs, usage), nil
}

// predial opens every connection before the clock starts (256 at a time,
// under the listen backlog), so handshakes are not in the measurement.
// Failures are counted; those workers dial again on their first request.
func predial(ctx context.Context, workers []*worker) int {
	sem := make(chan struct{}, 256)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for _, w := range workers {
		if ctx.Err() != nil {
			failed.Add(1)
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := w.c.dial(); err != nil {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(failed.Load())
}

// closedLoop sends back to back on one connection until to; requests that
// start in [from, to) are counted.
func closedLoop(ctx context.Context, w *worker, from, to time.Time) {
	for ctx.Err() == nil {
		t0 := time.Now()
		if !t0.Before(to) {
			return
		}
		err := w.c.do()
		if !t0.Before(from) {
			w.record(time.Since(t0), err)
		}
	}
}

// openLoop takes the next due time from the shared schedule, waits for it,
// sends, and counts latency from the due time.
func openLoop(ctx context.Context, w *worker, next *atomic.Int64, rate float64, start, from, to time.Time) {
	for ctx.Err() == nil {
		i := next.Add(1) - 1
		due := start.Add(time.Duration(float64(i) * float64(time.Second) / rate))
		if !due.Before(to) {
			return
		}
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		err := w.c.do()
		if !due.Before(from) {
			w.record(time.Since(due), err)
		}
	}
}
