package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// result is one load run.
type result struct {
	Requests, Errors int
	Seconds          float64
	RPS              float64
	P50, P99         time.Duration
	FirstError       string
}

// loader sends GETs to one URL with a caller token.
type loader struct {
	client *http.Client
	url    string
	token  string // "" for the upstream itself
}

func newLoader(url, token string, conns int) *loader {
	tr := &http.Transport{MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2, IdleConnTimeout: time.Minute}
	return &loader{client: &http.Client{Transport: tr, Timeout: 10 * time.Second}, url: url, token: token}
}

// one sends a request and reports whether it got a 2xx answer.
func (l *loader) one(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.url, nil)
	if err != nil {
		return err
	}
	if l.token != "" {
		req.Header.Set("Authorization", "Bearer "+l.token)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d %s", resp.StatusCode, resp.Header.Get("X-Portcullis-Error"))
	}
	return nil
}

// recorder collects latencies and errors from many goroutines.
type recorder struct {
	mu       sync.Mutex
	lat      []time.Duration
	errs     int
	firstErr string
}

func (r *recorder) add(d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs++
		if r.firstErr == "" {
			r.firstErr = err.Error()
		}
		return
	}
	r.lat = append(r.lat, d)
}

func (r *recorder) result(elapsed time.Duration) result {
	r.mu.Lock()
	defer r.mu.Unlock()
	slices.Sort(r.lat)
	res := result{Requests: len(r.lat), Errors: r.errs, Seconds: elapsed.Seconds(), FirstError: r.firstErr}
	res.RPS = float64(len(r.lat)) / elapsed.Seconds()
	if n := len(r.lat); n > 0 {
		res.P50, res.P99 = r.lat[n/2], r.lat[min(n-1, n*99/100)]
	}
	return res
}

// closed runs conns workers back to back (peak throughput): warmup first,
// then the measured window.
func (l *loader) closed(conns int, warmup, window time.Duration) result {
	l.run(conns, warmup, nil)
	rec := &recorder{}
	start := time.Now()
	l.run(conns, window, rec)
	return rec.result(time.Since(start))
}

func (l *loader) run(conns int, d time.Duration, rec *recorder) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				t := time.Now()
				err := l.one(context.Background())
				if rec != nil && ctx.Err() == nil {
					rec.add(time.Since(t), err)
				}
			}
		})
	}
	wg.Wait()
}

// open sends rate requests per second for window whatever the answers
// take; latency counts from when each request was due, so a stall shows
// (no coordinated omission).
func (l *loader) open(rate float64, workers int, window time.Duration) result {
	rec := &recorder{}
	due := make(chan time.Time, workers)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for d := range due {
				time.Sleep(time.Until(d))
				err := l.one(context.Background())
				rec.add(time.Since(d), err)
			}
		})
	}
	interval := time.Duration(float64(time.Second) / rate)
	for d := start; d.Before(start.Add(window)); d = d.Add(interval) {
		due <- d
	}
	close(due)
	wg.Wait()
	return rec.result(window)
}
