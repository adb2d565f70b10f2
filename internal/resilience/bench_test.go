package resilience

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// happyChain is one integration's resilience parts around a no-op vendor,
// configured as the DESIGN.md example integration would be.
type happyChain struct {
	limiter  *Limiter
	bulkhead *Bulkhead
	rt       http.RoundTripper
	req      *http.Request
}

func newHappyChain(b *testing.B) *happyChain {
	next := &noopRT{resp: http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}}
	breaker := NewBreaker("bench", BreakerConfig{FailureRatio: 0.5, MinRequests: 20, Window: 30 * time.Second, OpenFor: 15 * time.Second}, next, nil, nil)
	retry := NewRetry(RetryPolicy{Attempts: 3, Backoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second, MaxRetryAfter: 10 * time.Second},
		NewBudget(0.2, 10*time.Second, 1, nil), breaker, nil)
	req, err := http.NewRequest("GET", "http://vendor.test/v1/charges/ch_1", nil)
	if err != nil {
		b.Fatal(err)
	}
	return &happyChain{
		limiter:  NewLimiter(LimiterConfig{Rate: 1e9, Burst: 1e9, PerCaller: 1e9}, nil),
		bulkhead: NewBulkhead(100),
		rt:       retry,
		req:      req,
	}
}

func (c *happyChain) call(b *testing.B) {
	if _, err := c.limiter.Wait(context.Background(), "billing"); err != nil {
		b.Fatal(err)
	}
	release, ok := c.bulkhead.TryAcquire()
	if !ok {
		b.Fatal("bulkhead refused")
	}
	resp, err := c.rt.RoundTrip(c.req)
	if err != nil {
		b.Fatal(err)
	}
	c.limiter.Observe(resp.StatusCode, resp.Header)
	release()
}

// BenchmarkHappyPath is Limiter.Wait + Bulkhead + Retry(Breaker(no-op)) +
// Limiter.Observe for one successful call: the overhead every call pays.
func BenchmarkHappyPath(b *testing.B) {
	c := newHappyChain(b)
	b.ReportAllocs()
	for b.Loop() {
		c.call(b)
	}
}

func BenchmarkHappyPathParallel(b *testing.B) {
	c := newHappyChain(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.call(nil)
		}
	})
}

func BenchmarkRetryBreakerOnly(b *testing.B) {
	c := newHappyChain(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.rt.RoundTrip(c.req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLimiterWait(b *testing.B) {
	c := newHappyChain(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.limiter.Wait(context.Background(), "billing"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkObserveIETFRateLimit(b *testing.B) {
	l := NewLimiter(LimiterConfig{}, nil)
	h := hdr("RateLimit", `"default";r=50;t=30`)
	b.ReportAllocs()
	for b.Loop() {
		l.Observe(200, h)
	}
}
