package anomaly

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

// collector is a Sink that keeps events.
type collector struct {
	mu     sync.Mutex
	events []Event
}

func (c *collector) Emit(e Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
}

// traffic is one minute's calls for the simulator.
type traffic struct {
	route   string
	caller  string
	calls   int
	bytes   int64
	latency time.Duration
	// every n-th call answers with status (0: none)
	errEvery int
	errCode  int
}

const customers = "GET /v1/customers/{id}"

// steady is a normal minute of a payments integration.
func steady() []traffic {
	return []traffic{
		{route: customers, caller: "billing", calls: 40, bytes: 1200, latency: 120 * time.Millisecond, errEvery: 100, errCode: 404},
		{route: "POST /v1/charges", caller: "checkout", calls: 20, bytes: 800, latency: 300 * time.Millisecond, errEvery: 150, errCode: 502},
	}
}

// simulate drives minutes of traffic from start through d, minute by
// minute, with a little deterministic jitter, and ticks at each minute.
func simulate(d *Detector, start time.Time, minutes int, shape func(m int, at time.Time) []traffic) time.Time {
	t := start
	for m := range minutes {
		for _, tr := range shape(m, t) {
			for i := range tr.calls {
				status := 200
				// Number calls across the whole run, so errors are spread
				// evenly: every errEvery-th call of this stream fails.
				if n := int(t.Unix()/60)*tr.calls + i; tr.errEvery > 0 && n%tr.errEvery == 0 {
					status = tr.errCode
				}
				jitter := int64((i*7+m*13)%11) - 5 // -5..5 percent
				d.Observe(Sample{
					Integration: "payments", Route: tr.route, Caller: tr.caller, Status: status,
					Latency: tr.latency + tr.latency*time.Duration(jitter)/100,
					Bytes:   tr.bytes + tr.bytes*jitter/100,
					Time:    t.Add(time.Duration(i) * time.Minute / time.Duration(tr.calls+1)),
				})
			}
		}
		t = t.Add(time.Minute)
		d.Tick(t)
	}
	return t
}

var monday = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

func TestDetectorSteadyTrafficFiresNone(t *testing.T) {
	var c collector
	d := NewDetector(Config{}, clock.NewFake(monday), &c)
	simulate(d, monday, 6*60, func(int, time.Time) []traffic { return steady() })
	if len(c.events) != 0 {
		t.Errorf("steady traffic raised %d events, want none: %+v", len(c.events), c.events)
	}
}

func TestDetectorFiresEachKind(t *testing.T) {
	tests := []struct {
		name string
		// change returns the anomalous traffic for one minute
		change  func() []traffic
		minutes int
		want    []Event
	}{
		{name: "response-size-up-8x", minutes: 5, change: func() []traffic {
			tr := steady()
			tr[0].bytes *= 8
			return tr
		}, want: []Event{{Kind: KindSizeAnomaly, Route: customers,
			Message: "response size of GET /v1/customers/{id} up 8.0x (baseline 1.2 KiB, now 9.4 KiB)"}}},
		{name: "response-size-down", minutes: 5, change: func() []traffic {
			tr := steady()
			tr[0].bytes /= 10
			return tr
		}, want: []Event{{Kind: KindSizeAnomaly, Route: customers,
			Message: "response size of GET /v1/customers/{id} down 10x (baseline 1.2 KiB, now 120 B)"}}},
		{name: "latency-up", minutes: 5, change: func() []traffic {
			tr := steady()
			tr[1].latency *= 6
			return tr
		}, want: []Event{{Kind: KindLatencyAnomaly, Route: "POST /v1/charges",
			Message: "latency of POST /v1/charges up 6.0x (baseline 300ms, now 1.8s)"}}},
		{name: "5xx-rate-40-percent", minutes: 5, change: func() []traffic {
			tr := steady()
			tr[0].errEvery, tr[0].errCode = 0, 0
			tr[1].errEvery = 0
			tr = append(tr, traffic{route: customers, caller: "billing", calls: 40, bytes: 100, latency: 120 * time.Millisecond, errEvery: 1, errCode: 503})
			tr[0].calls = 0
			tr[1].calls = 60
			return tr
		}, want: []Event{{Kind: KindErrorRate, Key: "error_rate|payments|5xx",
			Message: "5xx rate 40% (baseline 0.2%)"}}},
		{name: "4xx-rate", minutes: 5, change: func() []traffic {
			tr := steady()
			tr[0].errEvery, tr[0].errCode = 2, 401
			return tr
		}, want: []Event{{Kind: KindErrorRate, Key: "error_rate|payments|4xx",
			Message: "4xx rate 33% (baseline 0.6%)"}}},
		{name: "short-spike-is-not-sustained", minutes: 2, change: func() []traffic {
			tr := steady()
			tr[0].bytes *= 8
			return tr
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c collector
			d := NewDetector(Config{}, clock.NewFake(monday), &c)
			end := simulate(d, monday, 120, func(int, time.Time) []traffic { return steady() })
			if len(c.events) != 0 {
				t.Fatalf("baseline phase raised events: %+v", c.events)
			}
			end = simulate(d, end, tc.minutes, func(int, time.Time) []traffic { return tc.change() })
			simulate(d, end, 30, func(int, time.Time) []traffic { return steady() })
			for i := range tc.want {
				tc.want[i].Integration = "payments"
			}
			opts := cmpopts.IgnoreFields(Event{}, "Time")
			if diff := cmp.Diff(tc.want, c.events, opts, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDetectorCallerVolumeByHourOfWeek: a reporting job calls once a minute
// at night and ten times a minute by day. After eight days, 30 calls a
// minute at 03:00 is 30x its usual for that hour, though only about four
// times its all-day average.
func TestDetectorCallerVolumeByHourOfWeek(t *testing.T) {
	var c collector
	d := NewDetector(Config{}, clock.NewFake(monday), &c)
	usual := func(at time.Time) []traffic {
		calls := 10
		if at.Hour() < 6 {
			calls = 1
		}
		return []traffic{{route: "GET /v1/reports", caller: "reports", calls: calls, bytes: 500, latency: 50 * time.Millisecond}}
	}
	end := simulate(d, monday, 8*24*60+3*60, func(_ int, at time.Time) []traffic { return usual(at) })
	if len(c.events) != 0 {
		t.Fatalf("eight days of usual traffic raised events: %+v", c.events)
	}
	simulate(d, end, 5, func(int, time.Time) []traffic {
		return []traffic{{route: "GET /v1/reports", caller: "reports", calls: 30, bytes: 500, latency: 50 * time.Millisecond}}
	})
	want := []Event{{Kind: KindCallerVolume, Integration: "payments", Caller: "reports",
		Message: "caller reports making 30x its usual calls at 03:02 (30 per 1m0s, usual 1.0)",
		Time:    end.Add(3 * time.Minute)}}
	if diff := cmp.Diff(want, c.events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestDetectorRearmsAfterRecovery(t *testing.T) {
	var c collector
	d := NewDetector(Config{}, clock.NewFake(monday), &c)
	big := func(int, time.Time) []traffic {
		tr := steady()
		tr[0].bytes *= 8
		return tr
	}
	end := simulate(d, monday, 120, func(int, time.Time) []traffic { return steady() })
	end = simulate(d, end, 5, big)
	end = simulate(d, end, 60, func(int, time.Time) []traffic { return steady() })
	simulate(d, end, 5, big)
	if got := len(c.events); got != 2 {
		t.Errorf("two separate incidents raised %d events, want 2: %+v", got, c.events)
	}
}

func TestDetectorBoundsSeries(t *testing.T) {
	d := NewDetector(Config{MaxSeries: 10}, nil, nil)
	for i := range 100 {
		d.Observe(Sample{Integration: "x", Route: "GET /r" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Status: 200, Bytes: 1, Latency: time.Millisecond})
	}
	if n := len(d.ints["x"].series); n > 10 {
		t.Errorf("tracked %d series, want at most 10", n)
	}
}
