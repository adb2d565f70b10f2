package dashboard

import (
	"math"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/observe"
)

// Series geometry: 120 buckets of 30 s hold the last hour.
const (
	// BucketWidth is the time one bucket of a Series covers.
	BucketWidth = 30 * time.Second
	// Buckets is how many buckets a Series keeps per integration.
	Buckets = 120
	// maxIntegrations bounds the map: integration names come from the
	// config, so this is only a guard against a bug upstream.
	maxIntegrations = 1024
)

// Latency histogram: bin i holds latencies in (bound(i-1), bound(i)] with
// bound(i) = 1 ms × latGrowth^i; the last bin holds everything above. A
// fixed log-spaced histogram is hand-written rather than taken from a
// sketch library because it is 60 counters, needs no allocation on the
// request path, and merges by addition across buckets; its relative error
// (< 20 % per bin, a few % after interpolation) is plenty for a sparkline.
const (
	latBins   = 60
	latGrowth = 1.2
)

// latBounds[i] is the upper bound of bin i in milliseconds: a read-only
// table, so the request path needs no math.Pow.
var latBounds = func() (b [latBins]float64) {
	for i := range b {
		b[i] = math.Pow(latGrowth, float64(i))
	}
	return b
}()

// latBound is the upper bound of bin i in milliseconds.
func latBound(i int) float64 { return latBounds[i] }

// latBin maps a latency to its bin: the first bin whose upper bound is at
// least d, by binary search over the table (cheaper than math.Log here).
func latBin(d time.Duration) int {
	ms := float64(d) / float64(time.Millisecond)
	lo, hi := 0, latBins-1 // the last bin is open: everything above lands there
	for lo < hi {
		mid := (lo + hi) / 2
		if ms <= latBounds[mid] {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

type histogram [latBins]uint32

func (h *histogram) add(o *histogram) {
	for i := range h {
		h[i] += o[i]
	}
}

func (h *histogram) total() uint64 {
	var n uint64
	for _, c := range h {
		n += uint64(c)
	}
	return n
}

// quantile estimates the q-quantile in milliseconds by linear
// interpolation inside the bin that holds it (as Prometheus'
// histogram_quantile does); 0 when empty. The open last bin reports its
// lower bound.
func (h *histogram) quantile(q float64) float64 {
	n := h.total()
	if n == 0 {
		return 0
	}
	rank := q * float64(n)
	var seen float64
	for i, c := range h {
		if c == 0 {
			continue
		}
		if seen+float64(c) >= rank {
			lo := 0.0
			if i > 0 {
				lo = latBound(i - 1)
			}
			if i == latBins-1 {
				return lo
			}
			hi := latBound(i)
			return lo + (hi-lo)*(rank-seen)/float64(c)
		}
		seen += float64(c)
	}
	return latBound(latBins - 2)
}

// bucket is one 30-s slot of the ring.
type bucket struct {
	epoch    int64 // bucket number since the Unix epoch; identifies the slot's period
	requests uint32
	c4xx     uint32
	c5xx     uint32
	fallback uint32
	refused  uint32 // refused by the gateway without calling the vendor
	lat      histogram
}

type ring struct {
	mu sync.Mutex
	b  [Buckets]bucket
}

// Series is an in-memory, per-integration time series over the last hour,
// fed by every finished request: request count, 4xx, 5xx, gateway
// refusals, fallback use and a latency histogram, in 120 buckets of 30 s.
// It works with no Prometheus and forgets everything on restart. Safe for
// concurrent use.
type Series struct {
	clk clock.Clock
	mu  sync.RWMutex
	m   map[string]*ring
}

// NewSeries returns an empty Series reading time from clk (nil: clock.System).
func NewSeries(clk clock.Clock) *Series {
	return &Series{clk: clock.Or(clk), m: map[string]*ring{}}
}

// Observe adds one finished request. It is meant for gateway.Options.OnRecord:
// it does not allocate once the integration has been seen, and holds one
// per-integration mutex for a few dozen nanoseconds. Records without an
// integration (unknown integration, jobs endpoint) are ignored.
//
// Latency is the time spent waiting on the vendor (all attempts), only
// for calls that reached it; a gateway refusal counts as refused, not as
// a fast call.
func (s *Series) Observe(r *observe.Record) {
	if r == nil || r.Integration == "" {
		return
	}
	rg := s.ring(r.Integration)
	if rg == nil {
		return
	}
	epoch := s.clk.Now().UnixNano() / int64(BucketWidth)
	rg.mu.Lock()
	b := &rg.b[epoch%Buckets]
	if b.epoch != epoch {
		*b = bucket{epoch: epoch}
	}
	b.requests++
	switch {
	case r.Status >= 500:
		b.c5xx++
	case r.Status >= 400:
		b.c4xx++
	}
	if r.Fallback != "" {
		b.fallback++
	}
	if r.Attempts > 0 {
		b.lat[latBin(r.UpstreamLatency)]++
	} else if r.ErrorCode != "" {
		b.refused++
	}
	rg.mu.Unlock()
}

func (s *Series) ring(name string) *ring {
	s.mu.RLock()
	rg := s.m[name]
	s.mu.RUnlock()
	if rg != nil {
		return rg
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rg = s.m[name]; rg == nil && len(s.m) < maxIntegrations {
		rg = &ring{}
		s.m[name] = rg
	}
	return rg
}

// Window is the traffic of one integration over a recent window.
type Window struct {
	Seconds     float64 `json:"seconds"` // how long the window really is (30–60 s: the current bucket is partial)
	Requests    uint64  `json:"requests"`
	RPS         float64 `json:"rps"`
	Rate4xx     float64 `json:"rate_4xx"`  // share of requests answered 4xx, 0..1
	Rate5xx     float64 `json:"rate_5xx"`  // share of requests answered 5xx, 0..1
	Fallback    uint64  `json:"fallback"`  // requests served by a fallback
	Refused     uint64  `json:"refused"`   // refused by the gateway without calling the vendor
	P50MS       float64 `json:"p50_ms"`    // vendor latency, calls that reached it
	P99MS       float64 `json:"p99_ms"`    // vendor latency, calls that reached it
	Errors5xx   uint64  `json:"count_5xx"` // absolute counts, for thresholds
	Errors4xx   uint64  `json:"count_4xx"`
	VendorCalls uint64  `json:"vendor_calls"`
}

// Sparks are per-bucket values over the last hour, oldest first, one per
// BucketWidth; the last is the current, partial bucket.
type Sparks struct {
	StepSeconds int       `json:"step_seconds"`
	End         time.Time `json:"end"` // end of the last bucket
	Requests    []uint32  `json:"requests"`
	C4xx        []uint32  `json:"count_4xx"`
	C5xx        []uint32  `json:"count_5xx"`
	Fallback    []uint32  `json:"fallback"`
	P50MS       []float64 `json:"p50_ms"`
	P99MS       []float64 `json:"p99_ms"`
}

// Snapshot is one integration's series at a moment.
type Snapshot struct {
	Minute Window `json:"last_minute"`
	Sparks Sparks `json:"sparks"`
}

// Snapshot copies name's last hour; an integration never seen has zeros.
func (s *Series) Snapshot(name string) Snapshot {
	now := s.clk.Now()
	cur := now.UnixNano() / int64(BucketWidth)
	var b [Buckets]bucket
	s.mu.RLock()
	rg := s.m[name]
	s.mu.RUnlock()
	if rg != nil {
		rg.mu.Lock()
		b = rg.b
		rg.mu.Unlock()
	}
	sp := Sparks{
		StepSeconds: int(BucketWidth / time.Second),
		End:         time.Unix(0, (cur+1)*int64(BucketWidth)).UTC(),
		Requests:    make([]uint32, Buckets), C4xx: make([]uint32, Buckets), C5xx: make([]uint32, Buckets),
		Fallback: make([]uint32, Buckets), P50MS: make([]float64, Buckets), P99MS: make([]float64, Buckets),
	}
	var w Window
	var wlat histogram
	for i := range Buckets {
		epoch := cur - int64(Buckets-1-i)
		if epoch < 0 {
			continue
		}
		bk := &b[epoch%Buckets]
		if bk.epoch != epoch {
			continue // stale slot from more than an hour ago, or never used
		}
		sp.Requests[i], sp.C4xx[i], sp.C5xx[i], sp.Fallback[i] = bk.requests, bk.c4xx, bk.c5xx, bk.fallback
		sp.P50MS[i], sp.P99MS[i] = round2(bk.lat.quantile(0.5)), round2(bk.lat.quantile(0.99))
		if epoch >= cur-1 {
			w.Requests += uint64(bk.requests)
			w.Errors4xx += uint64(bk.c4xx)
			w.Errors5xx += uint64(bk.c5xx)
			w.Fallback += uint64(bk.fallback)
			w.Refused += uint64(bk.refused)
			wlat.add(&bk.lat)
		}
	}
	curStart := time.Unix(0, cur*int64(BucketWidth))
	w.Seconds = round2((BucketWidth + now.Sub(curStart)).Seconds())
	w.RPS = round2(float64(w.Requests) / w.Seconds)
	if w.Requests > 0 {
		w.Rate4xx = round4(float64(w.Errors4xx) / float64(w.Requests))
		w.Rate5xx = round4(float64(w.Errors5xx) / float64(w.Requests))
	}
	w.VendorCalls = wlat.total()
	w.P50MS, w.P99MS = round2(wlat.quantile(0.5)), round2(wlat.quantile(0.99))
	return Snapshot{Minute: w, Sparks: sp}
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }
func round4(f float64) float64 { return math.Round(f*10000) / 10000 }
