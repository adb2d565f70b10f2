package anomaly

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

// Config tunes the Detector. Zero fields take DefaultConfig's values.
type Config struct {
	// Bucket is the aggregation period of every signal. Default 1m.
	Bucket time.Duration
	// Alpha is the EWMA weight of one new bucket. Default 0.05 (about the
	// last 20 buckets dominate).
	Alpha float64
	// Warmup is how many buckets a baseline needs before it can alert.
	// Default 30.
	Warmup int
	// Sustain is how many consecutive out-of-band buckets raise an event.
	// Default 3.
	Sustain int
	// Deviations is the band's half-width in EWMA mean absolute deviations.
	// Default 4.
	Deviations float64
	// SizeFactor: mean response size must be this many times above (or
	// below) its baseline. Default 4.
	SizeFactor float64
	// LatencyFactor: mean latency must be this many times its baseline.
	// Default 3.
	LatencyFactor float64
	// RateDelta and RateFactor: a 4xx or 5xx rate must exceed its baseline
	// by RateDelta (absolute, default 0.05) and be RateFactor times it
	// (default 3).
	RateDelta, RateFactor float64
	// MinRequests is the fewest calls in a bucket for its error rates to
	// count. Default 20.
	MinRequests int
	// VolumeFactor: a caller's calls per bucket must be this many times its
	// usual for that hour of the week. Default 5.
	VolumeFactor float64
	// MinVolume is the fewest calls per bucket a volume spike needs. Default 30.
	MinVolume float64
	// SeasonalMin is how many buckets an hour-of-week slot needs before the
	// caller's usual volume is taken from that slot instead of from all
	// hours. Default 30.
	SeasonalMin int
	// MaxSeries bounds the routes and callers tracked per integration.
	// Default 5000.
	MaxSeries int
}

// DefaultConfig is the Detector's tuning when Config fields are zero.
func DefaultConfig() Config {
	return Config{
		Bucket: time.Minute, Alpha: 0.05, Warmup: 30, Sustain: 3, Deviations: 4,
		SizeFactor: 4, LatencyFactor: 3, RateDelta: 0.05, RateFactor: 3, MinRequests: 20,
		VolumeFactor: 5, MinVolume: 30, SeasonalMin: 30, MaxSeries: 5000,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setD := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	setF := func(v *float64, def float64) {
		if *v <= 0 {
			*v = def
		}
	}
	setI := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	setD(&c.Bucket, d.Bucket)
	setF(&c.Alpha, d.Alpha)
	setI(&c.Warmup, d.Warmup)
	setI(&c.Sustain, d.Sustain)
	setF(&c.Deviations, d.Deviations)
	setF(&c.SizeFactor, d.SizeFactor)
	setF(&c.LatencyFactor, d.LatencyFactor)
	setF(&c.RateDelta, d.RateDelta)
	setF(&c.RateFactor, d.RateFactor)
	setI(&c.MinRequests, d.MinRequests)
	setF(&c.VolumeFactor, d.VolumeFactor)
	setF(&c.MinVolume, d.MinVolume)
	setI(&c.SeasonalMin, d.SeasonalMin)
	setI(&c.MaxSeries, d.MaxSeries)
	return c
}

// Sample is one finished call as the gateway saw it.
type Sample struct {
	Integration string
	Route       string // "METHOD template"
	Caller      string
	// Status is the vendor's status code; 0 means no response (a transport
	// failure), which counts with the 5xx rate.
	Status  int
	Latency time.Duration
	Bytes   int64 // response body size
	// Time is when the call finished; zero means the detector's clock.
	Time time.Time
}

// Detector keeps rolling baselines per integration of response size and
// latency (per route), 4xx and 5xx rates, and request volume per caller (per
// hour of the week), and raises an event when a signal stays outside its
// band for Config.Sustain buckets. It is safe for concurrent use.
//
// Buckets close when a later sample for the same series arrives or when Tick
// runs; the gateway should call Tick once per bucket so a caller that stops
// calling is still accounted for.
type Detector struct {
	cfg  Config
	clk  clock.Clock
	sink Sink

	mu   sync.RWMutex
	ints map[string]*integration
}

type integration struct {
	mu     sync.Mutex
	name   string
	series map[seriesKey]*series
}

type signal uint8

const (
	sigSize signal = iota
	sigLatency
	sig4xx
	sig5xx
	sigVolume
)

type seriesKey struct {
	sig  signal
	name string // route, caller, or "" for integration-wide rates
}

// NewDetector returns a detector that sends events to sink. A nil clock is
// clock.System.
func NewDetector(cfg Config, clk clock.Clock, sink Sink) *Detector {
	return &Detector{cfg: cfg.withDefaults(), clk: clock.Or(clk), sink: sink, ints: map[string]*integration{}}
}

// Observe adds one call to the baselines.
func (d *Detector) Observe(s Sample) {
	t := s.Time
	if t.IsZero() {
		t = d.clk.Now()
	}
	in := d.integration(s.Integration)
	b := d.bucketOf(t)
	var events []Event
	in.mu.Lock()
	add := func(k seriesKey, sum float64, n int) {
		if sr := in.get(k, d.cfg.MaxSeries); sr != nil {
			events = append(events, d.roll(in, k, sr, b)...)
			sr.sum += sum
			sr.n += n
		}
	}
	if s.Status >= 200 && s.Status < 300 {
		add(seriesKey{sigSize, s.Route}, float64(s.Bytes), 1)
	}
	if s.Latency > 0 {
		add(seriesKey{sigLatency, s.Route}, s.Latency.Seconds(), 1)
	}
	add(seriesKey{sig4xx, ""}, b2f(s.Status >= 400 && s.Status < 500), 1)
	add(seriesKey{sig5xx, ""}, b2f(s.Status >= 500 || s.Status == 0), 1)
	if s.Caller != "" {
		add(seriesKey{sigVolume, s.Caller}, 1, 1)
	}
	in.mu.Unlock()
	d.send(events)
}

// Tick closes every bucket that ended before now.
func (d *Detector) Tick(now time.Time) {
	b := d.bucketOf(now)
	d.mu.RLock()
	ints := make([]*integration, 0, len(d.ints))
	for _, in := range d.ints {
		ints = append(ints, in)
	}
	d.mu.RUnlock()
	var events []Event
	for _, in := range ints {
		in.mu.Lock()
		for k, sr := range in.series {
			events = append(events, d.roll(in, k, sr, b)...)
		}
		in.mu.Unlock()
	}
	d.send(events)
}

func (d *Detector) send(events []Event) {
	if d.sink == nil {
		return
	}
	for _, e := range events {
		d.sink.Emit(e)
	}
}

func (d *Detector) integration(name string) *integration {
	d.mu.RLock()
	in := d.ints[name]
	d.mu.RUnlock()
	if in != nil {
		return in
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if in = d.ints[name]; in == nil {
		in = &integration{name: name, series: map[seriesKey]*series{}}
		d.ints[name] = in
	}
	return in
}

func (in *integration) get(k seriesKey, limit int) *series {
	sr := in.series[k]
	if sr == nil {
		if len(in.series) >= limit {
			return nil
		}
		sr = &series{bucket: -1}
		if k.sig == sigVolume {
			sr.slots = new([hoursPerWeek]ewma)
		}
		in.series[k] = sr
	}
	return sr
}

func (d *Detector) bucketOf(t time.Time) int64 {
	return t.UnixNano() / int64(d.cfg.Bucket)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// maxGap bounds how many empty buckets a volume series fills in at once (two
// weeks of one-minute buckets), so a long silence costs bounded work.
const maxGap = 2 * hoursPerWeek * 60

const hoursPerWeek = 7 * 24

type series struct {
	bucket int64 // bucket being filled; -1 before the first sample
	sum    float64
	n      int
	base   ewma
	slots  *[hoursPerWeek]ewma // volume only: per hour of the week
	out    int
	firing bool
}

// ewma is an exponentially weighted mean and mean absolute deviation.
type ewma struct {
	mean, dev float64
	n         int
}

func (e *ewma) add(x, alpha float64) {
	if e.n == 0 {
		e.mean, e.dev, e.n = x, 0, 1
		return
	}
	diff := x - e.mean
	e.mean += alpha * diff
	e.dev += alpha * (math.Abs(diff) - e.dev)
	e.n++
}

// roll closes sr's bucket if now is a later bucket, evaluating and then
// folding the closed value into the baseline.
func (d *Detector) roll(in *integration, k seriesKey, sr *series, now int64) []Event {
	if sr.bucket < 0 {
		sr.bucket = now
		return nil
	}
	if now <= sr.bucket {
		return nil
	}
	var events []Event
	if e, ok := d.close(in, k, sr, sr.bucket); ok {
		events = append(events, e)
	}
	if k.sig == sigVolume {
		// A caller's silent buckets are zero calls, and part of its usual.
		gap := now - sr.bucket - 1
		if gap > maxGap {
			gap = maxGap
		}
		for b := now - gap; b < now; b++ {
			if e, ok := d.close(in, k, sr, b); ok {
				events = append(events, e)
			}
		}
	}
	sr.bucket, sr.sum, sr.n = now, 0, 0
	return events
}

// close evaluates one finished bucket of sr (its accumulators hold the
// bucket's sum and count; zero for a filled-in silent bucket).
func (d *Detector) close(in *integration, k seriesKey, sr *series, bucket int64) (Event, bool) {
	c := d.cfg
	var x float64
	switch k.sig {
	case sigVolume:
		x = sr.sum
	case sig4xx, sig5xx:
		if sr.n < c.MinRequests {
			sr.sum, sr.n = 0, 0
			return Event{}, false // too few calls to judge a rate
		}
		x = sr.sum / float64(sr.n)
	default:
		if sr.n == 0 {
			return Event{}, false
		}
		x = sr.sum / float64(sr.n)
	}
	sr.sum, sr.n = 0, 0

	start := time.Unix(0, bucket*int64(c.Bucket))
	base := &sr.base
	if sr.slots != nil {
		if slot := &sr.slots[hourOfWeek(start)]; slot.n >= c.SeasonalMin {
			base = slot
		}
	}
	out := base.n >= c.Warmup && d.outside(k.sig, x, base)
	mean := base.mean
	// Out-of-band buckets are kept out of the baseline until they have
	// raised an event (so the event compares against the baseline before
	// the change), then folded in slowly, so that a lasting shift becomes
	// the new normal and stops alerting.
	switch {
	case !out:
		sr.fold(x, c.Alpha, start)
	case sr.firing:
		sr.fold(x, c.Alpha/10, start)
	}
	if !out {
		sr.out, sr.firing = 0, false
		return Event{}, false
	}
	sr.out++
	if sr.out < c.Sustain || sr.firing {
		return Event{}, false
	}
	sr.firing = true
	return d.event(in.name, k, x, mean, start), true
}

func (sr *series) fold(x, alpha float64, start time.Time) {
	sr.base.add(x, alpha)
	if sr.slots != nil {
		sr.slots[hourOfWeek(start)].add(x, alpha)
	}
}

func hourOfWeek(t time.Time) int { return int(t.Weekday())*24 + t.Hour() }

// outside reports whether x is outside the band of base for a signal.
func (d *Detector) outside(sig signal, x float64, base *ewma) bool {
	c := d.cfg
	m, dev := base.mean, base.dev
	wide := math.Abs(x-m) > c.Deviations*dev
	switch sig {
	case sigSize:
		return wide && (x >= m*c.SizeFactor || x*c.SizeFactor <= m)
	case sigLatency:
		return wide && x >= m*c.LatencyFactor
	case sig4xx, sig5xx:
		return wide && x >= m+c.RateDelta && x >= m*c.RateFactor
	case sigVolume:
		return wide && x >= c.MinVolume && x >= m*c.VolumeFactor
	}
	return false
}

func (d *Detector) event(integ string, k seriesKey, x, mean float64, start time.Time) Event {
	e := Event{Integration: integ, Time: start.Add(d.cfg.Bucket)}
	switch k.sig {
	case sigSize:
		dir, f := "up", ratio(x, mean)
		if x < mean {
			dir, f = "down", ratio(mean, x)
		}
		e.Kind, e.Route = KindSizeAnomaly, k.name
		e.Message = fmt.Sprintf("response size of %s %s %s (baseline %s, now %s)", k.name, dir, f, bytesText(mean), bytesText(x))
	case sigLatency:
		e.Kind, e.Route = KindLatencyAnomaly, k.name
		e.Message = fmt.Sprintf("latency of %s up %s (baseline %s, now %s)", k.name, ratio(x, mean), durText(mean), durText(x))
	case sig4xx, sig5xx:
		class := "4xx"
		if k.sig == sig5xx {
			class = "5xx"
		}
		e.Kind, e.Key = KindErrorRate, string(KindErrorRate)+"|"+integ+"|"+class
		e.Message = fmt.Sprintf("%s rate %s (baseline %s)", class, pct(x), pct(mean))
	case sigVolume:
		e.Kind, e.Caller = KindCallerVolume, k.name
		e.Message = fmt.Sprintf("caller %s making %s its usual calls at %s (%.0f per %s, usual %.1f)",
			k.name, ratio(x, mean), start.Format("15:04"), x, d.cfg.Bucket, mean)
	}
	return e
}

func ratio(a, b float64) string {
	if b <= 0 {
		return "∞x"
	}
	r := a / b
	if r >= 9.95 {
		return fmt.Sprintf("%.0fx", r)
	}
	return fmt.Sprintf("%.1fx", r)
}

func pct(x float64) string {
	p := 100 * x
	switch {
	case p >= 10 || p == 0:
		return fmt.Sprintf("%.0f%%", p)
	case p >= 0.1:
		return fmt.Sprintf("%.1f%%", p)
	}
	return fmt.Sprintf("%.2f%%", p)
}

func bytesText(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

func durText(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d >= time.Second {
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}
