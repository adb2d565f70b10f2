package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/procfs"
)

func TestPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty-is-zero", nil, 99, 0},
		{"one-sample", ms(7), 50, 7 * time.Millisecond},
		{"p50-of-ten-is-fifth", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 50, 5 * time.Millisecond},
		{"p99-of-ten-is-max", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"p90-of-ten-is-ninth", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
		{"p99-of-hundred-ignores-one-outlier", append(ms(make([]int, 99)...), time.Second), 99, 0},
		{"p0-is-min", ms(3, 4), 0, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.q); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.q, got, tt.want)
			}
		})
	}
}

func testPlan(t *testing.T, srv *httptest.Server) plan {
	t.Helper()
	u, err := url.Parse(srv.URL + "/v1/items/42")
	if err != nil {
		t.Fatal(err)
	}
	return plan{name: "t", phase: phasePeak, target: u, conns: 1, duration: time.Second, timeout: 5 * time.Second, maxSamples: 1 << 20}
}

// stallOnce answers at once except for the 5th request, which it holds for
// stall.
func stallOnce(stall time.Duration) *httptest.Server {
	var n atomic.Int64
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 5 {
			time.Sleep(stall)
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
}

// TestOpenLoopCountsStallFromDueTime is the reason for the Go generator: a
// half-second server stall must show in the open-loop percentiles (every
// call due during it waited), while a closed loop records it as one slow
// sample out of hundreds (coordinated omission).
func TestOpenLoopCountsStallFromDueTime(t *testing.T) {
	const stall = 500 * time.Millisecond
	tests := []struct {
		name     string
		rate     float64
		p90AtLst time.Duration // p90 must be at least this
		p90Below time.Duration // and below this (0: no bound)
	}{
		// At 200/s, 100 calls are due during the stall; over a 1 s window
		// the slowest 10% waited at least 400 ms.
		{"open-loop-sees-the-stall", 200, 300 * time.Millisecond, 0},
		{"closed-loop-hides-the-stall", 0, 0, 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := stallOnce(stall)
			defer srv.Close()
			p := testPlan(t, srv)
			p.rate = tt.rate
			res, err := execute(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 {
				t.Fatalf("errors: %v", res.TopErrors)
			}
			p90 := time.Duration(res.P90MS * float64(time.Millisecond))
			if p90 < tt.p90AtLst || (tt.p90Below > 0 && p90 >= tt.p90Below) {
				t.Errorf("p90 = %v over %d samples, want in [%v, %v)", p90, res.Samples, tt.p90AtLst, tt.p90Below)
			}
			if res.MaxMS < float64(stall/time.Millisecond) {
				t.Errorf("max = %.1f ms, want at least the %v stall", res.MaxMS, stall)
			}
		})
	}
}

func TestOpenLoopHoldsTheRate(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	p := testPlan(t, srv)
	p.rate, p.conns = 300, 4
	res, err := execute(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	// Requests due in the 1 s window: exactly rate × seconds, give or take
	// the one on the edge.
	if res.Requests < 299 || res.Requests > 301 {
		t.Errorf("requests = %d, want 300 ± 1 at 300/s for 1 s", res.Requests)
	}
}

func TestRunCountsRefusalsAsErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer caller-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("X-Portcullis-Error", "route_not_allowed")
		w.WriteHeader(http.StatusForbidden)
	}))
	defer srv.Close()
	p := testPlan(t, srv)
	p.auth = "caller-token"
	p.duration = 200 * time.Millisecond
	res, err := execute(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != res.Requests || res.RPS != 0 {
		t.Errorf("requests %d, errors %d, rps %.0f: every refusal must be an error and none throughput", res.Requests, res.Errors, res.RPS)
	}
	want := []ErrorCount{{Error: "status 403 route_not_allowed", Count: int(res.Errors)}}
	if diff := cmp.Diff(want, res.TopErrors); diff != "" {
		t.Errorf("top errors (-want +got):\n%s", diff)
	}
}

func TestErrorKind(t *testing.T) {
	opErr := func(op string, err error) error {
		return &net.OpError{Op: op, Net: "tcp", Source: &net.TCPAddr{Port: 40001}, Addr: &net.TCPAddr{Port: 8080}, Err: err}
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"status-with-gateway-code", &statusError{status: 503, code: "overloaded"}, "status 503 overloaded"},
		{"status-from-vendor", fmt.Errorf("x: %w", &statusError{status: 502}), "status 502"},
		{"timeout-drops-ports", fmt.Errorf("read response: %w", opErr("read", os.ErrDeadlineExceeded)), "read response: timeout"},
		{"server-closed", fmt.Errorf("read response: %w", io.ErrUnexpectedEOF), "read response: connection closed by the server"},
		{"refused-drops-ports", fmt.Errorf("dial: %w", opErr("dial", syscall.ECONNREFUSED)), "dial: connection refused"},
		{"other-kept-whole", errors.New("something else"), "something else"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errorKind(tt.err); got != tt.want {
				t.Errorf("errorKind(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestRunFailsWhenNothingListens(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	p := testPlan(t, srv)
	srv.Close()
	p.timeout = time.Second
	if _, err := execute(context.Background(), p); !errors.Is(err, errNoConnection) {
		t.Errorf("err = %v, want errNoConnection", err)
	}
}

var loopbackCases = []struct {
	name string
	raw  string
	ok   bool
}{
	{"ipv4-loopback", "http://127.0.0.1:8080/v1/x", true},
	{"ipv6-loopback", "http://[::1]:8080/", true},
	{"other-loopback-address", "http://127.0.0.2:80/", true},
	{"hostname-refused", "http://localhost:8080/", false},
	{"remote-ip-refused", "http://10.0.0.1:8080/", false},
	{"https-refused", "https://127.0.0.1:8443/", false},
	{"port-required", "http://127.0.0.1/", false},
	{"garbage", "::not a url", false},
}

func TestLoopbackURL(t *testing.T) {
	for _, tt := range loopbackCases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loopbackURL(tt.raw)
			if (err == nil) != tt.ok {
				t.Errorf("loopbackURL(%q) err = %v, want ok=%v", tt.raw, err, tt.ok)
			}
		})
	}
}

func FuzzLoopbackURL(f *testing.F) {
	for _, tt := range loopbackCases {
		f.Add(tt.raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := loopbackURL(raw)
		if err != nil {
			return
		}
		if u.Scheme != "http" || u.Port() == "" {
			t.Fatalf("accepted %q: scheme %q port %q", raw, u.Scheme, u.Port())
		}
		if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
			t.Fatalf("accepted %q whose host %q is not a loopback IP", raw, u.Hostname())
		}
	})
}

func peak(name string, round int, rps, cpu float64) *Result {
	return &Result{Name: name, Phase: phasePeak, Round: round, Mode: "closed", Conns: 50, Seconds: 10, RPS: rps,
		Procs: []ProcUsage{{Label: "server", CPUPercent: cpu}}}
}

func TestSummarizeTakesMedianRound(t *testing.T) {
	results := []*Result{
		peak(namePortcullis, 1, 900, 100), peak(namePortcullis, 2, 3000, 100), peak(namePortcullis, 3, 1000, 100),
		peak(nameBare, 1, 1200, 100),
	}
	order, s := summarize(results, phasePeak, rps)
	type got struct {
		Order              []string
		Median, Min, Max   float64
		Rounds, MedianFrom int
	}
	g := got{Order: order, Median: s[namePortcullis].median.RPS, Min: s[namePortcullis].min, Max: s[namePortcullis].max,
		Rounds: s[namePortcullis].rounds, MedianFrom: s[namePortcullis].median.Round}
	want := got{Order: []string{namePortcullis, nameBare}, Median: 1000, Min: 900, Max: 3000, Rounds: 3, MedianFrom: 3}
	if diff := cmp.Diff(want, g); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if r := halfPeakRate(results, namePortcullis); r != 500 {
		t.Errorf("halfPeakRate = %v, want half of the median round (500)", r)
	}
}

func TestReportTargets(t *testing.T) {
	tests := []struct {
		name    string
		results []*Result
		want    []string
	}{
		{
			name: "slower-than-bare-is-not-met",
			results: []*Result{peak(nameNginx, 1, 4000, 80), peak(nameBare, 1, 1000, 100), peak(namePortcullis, 1, 900, 100),
				{Name: nameDirect, Phase: phaseHalfPeak, Mode: "open", TargetRate: 450, Seconds: 10, P99MS: 0.5},
				{Name: namePortcullis, Phase: phaseHalfPeak, Mode: "open", TargetRate: 450, Seconds: 10, P99MS: 1.7}},
			want: []string{
				"portcullis ÷ bare-go               0.90 req/s, 0.90 per core  (target ≥ 1.00)  NOT met",
				"portcullis ÷ nginx                 0.23 req/s, 0.18 per core  (goal 0.80)  NOT met",
				"added p99 at half peak (median p99s) 1.20 ms  (target < 1 ms)  NOT met",
			},
		},
		{
			name: "concurrency-met-only-at-ten-thousand",
			results: []*Result{{Name: namePortcullis, Phase: phaseConcurrency, Conns: 9700, Seconds: 5, Requests: 40000,
				Procs: []ProcUsage{{Label: "server", PeakRSSBytes: 150e6}}}},
			want: []string{"errors 0, peak RSS 150.0 MB  (target 10000 calls, 0 errors, < 200 MB)  met at 9700 (not run at 10000 here)"},
		},
		{
			name: "issue-16-rows",
			results: []*Result{peak(nameBare, 1, 1000, 100), peak(namePortcullis, 1, 960, 100),
				{Name: nameDirect, Phase: phaseHalfPeak, Mode: "open", TargetRate: 480, Seconds: 10, P99MS: 0.5},
				{Name: namePortcullis, Phase: phaseHalfPeak, Mode: "open", TargetRate: 480, Seconds: 10, P50MS: 0.3, P90MS: 0.8, P99MS: 1.7},
				{Name: nameBare, Phase: phaseHalfPeak, Mode: "open", TargetRate: 480, Seconds: 10, P99MS: 1.1},
				{Name: namePortcullis, Phase: phaseConcurrency, Conns: 9000, Seconds: 6, Requests: 40000,
					Procs: []ProcUsage{{Label: "server", PeakRSSBytes: 760e6, StartRSSBytes: 40e6}}},
				{Name: nameBare, Phase: phaseConcurrency, Conns: 9000, Seconds: 6, Requests: 40000,
					Procs: []ProcUsage{{Label: "server", PeakRSSBytes: 733e6, StartRSSBytes: 13e6}}}},
			want: []string{
				"peak req/s, portcullis ÷ bare-go             0.96 (0.96 per core)  (target ≥ 0.95)  met",
				"p99 added over direct at half peak           1.20 ms (p50 0.30, p90 0.80, p99 1.70 vs direct 0.50)  (target ≤ 1 ms)  NOT met",
				"  bare-go's p99 over direct at that rate     0.60 ms (p99 1.10), for reference",
				"9000 in-flight 1 s calls: peak RSS           760.0 MB (bare-go 733.0 MB, ×1.04), 80.0 MB per 1,000 calls (bare-go 80.0), errors 0  (target ≤ bare-go + 5 %, 0 errors)  met",
			},
		},
		{
			name: "concurrency-errors-not-met",
			results: []*Result{{Name: namePortcullis, Phase: phaseConcurrency, Conns: 10000, Seconds: 5, Requests: 40000, Errors: 3,
				Procs: []ProcUsage{{Label: "server", PeakRSSBytes: 150e6}}}},
			want: []string{"errors 3, peak RSS 150.0 MB  (target 10000 calls, 0 errors, < 200 MB)  NOT met"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeReport(&b, tt.results); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("report lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}

var resultLines = []string{
	`{"name":"direct","phase":"peak","round":1,"mode":"closed","conns":50,"seconds":10,"requests":10,"errors":0,"rps":1}`,
	"\n\n",
	`{"name":"x"}` + "\n" + `{"name":"y","procs":[{"label":"server","pid":3,"cpu_percent":50,"peak_rss_bytes":7}]}`,
	`not json`,
}

func TestReadResults(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		names []string
		err   string
	}{
		{"one-line", resultLines[0], []string{"direct"}, ""},
		{"blank-lines-skipped", resultLines[1] + resultLines[2], []string{"x", "y"}, ""},
		{"bad-line-is-named", resultLines[0] + "\n" + resultLines[3], nil, "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := readResults(strings.NewReader(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one naming %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, r := range rs {
				names = append(names, r.Name)
			}
			if diff := cmp.Diff(tt.names, names); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzReadResults: whatever it is fed, readResults does not panic, and what
// it accepts survives a write/read round trip unchanged.
func FuzzReadResults(f *testing.F) {
	for _, l := range resultLines {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, in string) {
		rs, err := readResults(strings.NewReader(in))
		if err != nil {
			return
		}
		var b bytes.Buffer
		for _, r := range rs {
			if err := writeJSONLine(&b, r); err != nil {
				return // e.g. NaN cannot be encoded; nothing to compare
			}
		}
		again, err := readResults(&b)
		if err != nil {
			t.Fatalf("re-reading written results: %v", err)
		}
		if diff := cmp.Diff(rs, again); diff != "" {
			t.Fatalf("round trip changed results (-first +second):\n%s", diff)
		}
	})
}

// The half-peak table shows how long the server waited for a CPU the
// kernel gave to another process, so a p99 a busy machine made is seen
// as such; a server not measured shows "-".
func TestHalfPeakShowsRunQueueWait(t *testing.T) {
	pc := &Result{Name: namePortcullis, Phase: phaseHalfPeak, Mode: "open", TargetRate: 480, Seconds: 10, P99MS: 9,
		Procs: []ProcUsage{{Label: "server", CPUPercent: 40, RunQueueWaitPercent: 12.5}}}
	direct := &Result{Name: nameDirect, Phase: phaseHalfPeak, Mode: "open", TargetRate: 480, Seconds: 10, P99MS: 1,
		Procs: []ProcUsage{{Label: "server", CPUPercent: 30, RunQueueWaitPercent: -1}}}
	var b strings.Builder
	err := writeHalfPeak(&b, []string{nameDirect, namePortcullis}, map[string]summary{
		nameDirect: {median: direct, rounds: 1}, namePortcullis: {median: pc, rounds: 1}})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	var sawPC, sawDirect bool
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case namePortcullis:
			sawPC = f[len(f)-1] == "12.5%" && f[len(f)-2] == "40%"
		case nameDirect:
			sawDirect = f[len(f)-1] == "-"
		}
	}
	if !sawPC || !sawDirect {
		t.Errorf("run-queue wait column missing or wrong:\n%s", b.String())
	}
}

// runQueueWait reads this process's threads and never goes backwards.
func TestRunQueueWaitOfSelf(t *testing.T) {
	self, err := procfs.Self()
	if err != nil {
		t.Skip("no /proc:", err)
	}
	a, ok := runQueueWait(self)
	if !ok {
		t.Fatal("schedstat of this process not read")
	}
	for i := 0; i < 1e7; i++ {
		_ = i * i
	}
	if b, ok := runQueueWait(self); !ok || b < a {
		t.Errorf("run-queue wait went from %d to %d (ok %v)", a, b, ok)
	}
}
