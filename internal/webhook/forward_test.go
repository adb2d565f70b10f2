package webhook

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/secret"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// delivery is one request the internal receiver got.
type delivery struct {
	ID, ContentType, Event, VendorSig string
	Timestamp                         int64
	Body                              string
	Verified                          bool
}

// receiver plays an internal service behind forward_to: it verifies the
// gateway's Standard Webhooks signature and records what it got. It starts
// down (connection refused) on a fixed loopback port.
type receiver struct {
	t      *testing.T
	now    func() time.Time
	addr   string
	mu     sync.Mutex
	srv    *httptest.Server
	got    []delivery
	status int
	header http.Header
}

func newReceiver(t *testing.T, now func() time.Time) *receiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, now: now, addr: ln.Addr().String(), status: http.StatusNoContent}
	_ = ln.Close()
	t.Cleanup(r.down)
	return r
}

func (r *receiver) url() string { return "http://" + r.addr + "/internal/hooks" }

func (r *receiver) up() {
	r.t.Helper()
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
}

func (r *receiver) down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	std := standard{}
	_, err := std.Verify(req.Header, body, []secret.Value{secret.New(testSecrets["env:INTERNAL"])}, r.now(), 5*time.Minute)
	ts, _ := parseUnix(req.Header.Get("Webhook-Timestamp"))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, delivery{
		ID: req.Header.Get("Webhook-Id"), ContentType: req.Header.Get("Content-Type"),
		Event: req.Header.Get("X-GitHub-Event"), VendorSig: req.Header.Get("X-Hub-Signature-256"),
		Timestamp: ts.Unix(), Body: string(body), Verified: err == nil,
	})
	for k, v := range r.header {
		w.Header()[k] = v
	}
	w.WriteHeader(r.status)
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

func (r *receiver) set(status int, header http.Header) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.header = status, header
}

// idCounts counts deliveries per webhook-id.
func idCounts(ds []delivery) map[string]int {
	m := map[string]int{}
	for _, d := range ds {
		m[d.ID]++
	}
	return m
}

func TestForwardReSignsWithForwardSecret(t *testing.T) {
	clk := newClock()
	rcv := newReceiver(t, clk.Now)
	rcv.up()
	f := newFixture(t, testWebhooks(rcv.url()))
	f.clock = clk
	f.store = store.NewMemory(clk)
	f.opts.Store, f.opts.Clock = f.store, clk
	h, fw := f.handler(), f.forwarder()

	r := f.signed("github", "72d3162e-cc78-11e3-81ab-4c9367dc0958", eventBody, "env:GITHUB")
	r.Header.Set("X-GitHub-Event", "push")
	if rec := serve(h, r); rec.Code != 200 {
		t.Fatalf("accept: %d %s", rec.Code, rec.Body)
	}
	clk.Advance(3 * time.Second) // forwarded later: a new timestamp
	fw.pass(context.Background())

	want := []delivery{{
		ID: "72d3162e-cc78-11e3-81ab-4c9367dc0958", ContentType: "application/json", Event: "push",
		Timestamp: clk.Now().Unix(), Body: string(eventBody), Verified: true,
	}}
	if diff := cmp.Diff(want, rcv.deliveries()); diff != "" {
		t.Errorf("delivery (-want +got):\n%s", diff)
	}
	if n := metricValue(t, f.metrics.Forwards.WithLabelValues("github", "delivered")); n != 1 {
		t.Errorf("forward delivered = %v, want 1", n)
	}
	if d := metricValue(t, f.metrics.QueueDepth.WithLabelValues("github")); d != 0 {
		t.Errorf("queue depth = %v after delivery, want 0", d)
	}
}

// openStore opens the store for one "process life"; close ends it.
type openStore func(t *testing.T, clk clock.Clock) (s Store, close func())

func memoryLives() openStore {
	var m *store.Memory
	return func(_ *testing.T, clk clock.Clock) (Store, func()) {
		if m == nil {
			m = store.NewMemory(clk) // a Memory store outlives the Handler and Forwarder only
		}
		return m, func() {}
	}
}

func embeddedLives(dir string) openStore {
	return func(t *testing.T, clk clock.Clock) (Store, func()) {
		e, err := store.OpenEmbedded(dir, store.EmbeddedOptions{Clock: clk, SweepInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		return e, func() { _ = e.Close() }
	}
}

// TestReceiverDownAcrossRestart: webhooks arrive while the internal receiver
// is down, the gateway restarts, the receiver comes back: every webhook is
// delivered, none twice, and the vendor's replay after the restart is refused.
func TestReceiverDownAcrossRestart(t *testing.T) {
	tests := []struct {
		name string
		open openStore
	}{
		{"memory-store-new-handler-and-forwarder", memoryLives()},
		{"embedded-store-closed-and-reopened", embeddedLives(t.TempDir())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			rcv := newReceiver(t, clk.Now)
			life := func() (*fixture, *Handler, *Forwarder, func()) {
				f := newFixture(t, testWebhooks(rcv.url()))
				s, closeStore := tt.open(t, clk)
				f.clock, f.store = clk, s
				f.opts.Store, f.opts.Clock = s, clk
				f.opts.RetryBase, f.opts.RetryMax = time.Second, 30*time.Second
				return f, f.handler(), f.forwarder(), closeStore
			}

			// Life 1: receiver down.
			f, h, fw, closeStore := life()
			ids := []string{"msg_a", "msg_b", "msg_c", "msg_d", "msg_e"}
			for _, id := range ids {
				if rec := serve(h, f.signed("payments", id, []byte(`{"id":"`+id+`"}`), "env:STD_NEW")); rec.Code != 200 {
					t.Fatalf("accept %s: %d %s", id, rec.Code, rec.Body)
				}
			}
			fw.pass(context.Background())
			clk.Advance(5 * time.Second)
			fw.pass(context.Background())
			if d := metricValue(t, f.metrics.QueueDepth.WithLabelValues("payments")); d != 5 {
				t.Errorf("queue depth while the receiver is down = %v, want 5", d)
			}
			if age := metricValue(t, f.metrics.QueueOldestAge.WithLabelValues("payments")); age != 5 {
				t.Errorf("oldest age = %vs, want 5s", age)
			}
			if n := metricValue(t, f.metrics.Forwards.WithLabelValues("payments", "retry")); n != 10 {
				t.Errorf("retries = %v, want 10 (5 webhooks × 2 passes)", n)
			}
			closeStore()

			// Life 2: a new process; the receiver is back.
			clk.Advance(10 * time.Second)
			f, h, fw, closeStore = life()
			defer closeStore()
			rcv.up()
			rec := serve(h, f.signed("payments", "msg_c", []byte(`{"id":"msg_c"}`), "env:STD_NEW"))
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("vendor replay after restart: %d, want 401 replay", rec.Code)
			}
			for range 3 {
				fw.pass(context.Background())
				clk.Advance(time.Minute)
			}
			want := map[string]int{"msg_a": 1, "msg_b": 1, "msg_c": 1, "msg_d": 1, "msg_e": 1}
			if diff := cmp.Diff(want, idCounts(rcv.deliveries())); diff != "" {
				t.Errorf("deliveries per id (-want +got):\n%s", diff)
			}
			for _, d := range rcv.deliveries() {
				if !d.Verified {
					t.Errorf("delivery %s did not verify with the forward secret", d.ID)
				}
			}
			depth, _, err := f.store.Stats(context.Background(), QueueName("payments"))
			if err != nil || depth != 0 {
				t.Errorf("queue depth after recovery = %d (%v), want 0", depth, err)
			}
		})
	}
}

// A worker that died holding a job: the job is delivered once its lease ends.
func TestForwardReclaimsAfterLease(t *testing.T) {
	clk := newClock()
	rcv := newReceiver(t, clk.Now)
	rcv.up()
	f := newFixture(t, testWebhooks(rcv.url()))
	f.clock, f.store = clk, store.NewMemory(clk)
	f.opts.Store, f.opts.Clock = f.store, clk
	if rec := serve(f.handler(), f.signed("payments", "msg_l", eventBody, "env:STD_NEW")); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	// The dead worker claimed it with the Forwarder's lease and vanished.
	if jobs, _ := f.store.Claim(context.Background(), QueueName("payments"), 1, defaultForwardTimeout+30*time.Second); len(jobs) != 1 {
		t.Fatal("claim failed")
	}
	fw := f.forwarder()
	fw.pass(context.Background())
	if n := len(rcv.deliveries()); n != 0 {
		t.Fatalf("delivered %d while another worker held the lease", n)
	}
	clk.Advance(61 * time.Second)
	fw.pass(context.Background())
	fw.pass(context.Background())
	if diff := cmp.Diff(map[string]int{"msg_l": 1}, idCounts(rcv.deliveries())); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
}

func TestForwardFailures(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		header    http.Header
		advance   time.Duration // before the second pass
		wantState store.JobState
		wantDue   time.Duration // NotBefore - now after the first attempt (for retries)
		wantEvent bool
	}{
		{"server-error-retries-with-backoff", 500, nil, 0, store.JobPending, 500 * time.Millisecond, false},
		{"retry-after-honoured", 503, http.Header{"Retry-After": {"120"}}, 0, store.JobPending, 120 * time.Second, false},
		{"redirect-not-followed", 302, http.Header{}, 0, store.JobPending, 500 * time.Millisecond, false},
		{"gone-gives-up", 410, nil, 0, store.JobFailed, 0, true},
		{"too-old-gives-up", 500, nil, 73 * time.Hour, store.JobFailed, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			rcv := newReceiver(t, clk.Now)
			rcv.up()
			var elsewhere atomic.Int32
			if tt.status == http.StatusFound {
				other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { elsewhere.Add(1) }))
				defer other.Close()
				tt.header.Set("Location", other.URL)
			}
			rcv.set(tt.status, tt.header)
			f := newFixture(t, testWebhooks(rcv.url()))
			f.clock, f.store = clk, store.NewMemory(clk)
			f.opts.Store, f.opts.Clock = f.store, clk
			if rec := serve(f.handler(), f.signed("payments", "msg_f", eventBody, "env:STD_NEW")); rec.Code != 200 {
				t.Fatal(rec.Code)
			}
			fw := f.forwarder()
			clk.Advance(tt.advance)
			fw.pass(context.Background())
			jobs := jobsOf(t, f, "payments")
			if len(jobs) != 1 {
				t.Fatalf("want 1 job, got %d", len(jobs))
			}
			j := jobs[0]
			if j.State != tt.wantState {
				t.Errorf("state = %s, want %s (last error %q)", j.State, tt.wantState, j.LastError)
			}
			if tt.wantState == store.JobPending {
				if due := j.NotBefore.Sub(clk.Now()); due != tt.wantDue {
					t.Errorf("next attempt in %s, want %s", due, tt.wantDue)
				}
			}
			if got := len(f.eventsOf(EventForwardGaveUp)) == 1; got != tt.wantEvent {
				t.Errorf("gave-up event raised = %v, want %v", got, tt.wantEvent)
			}
			if elsewhere.Load() != 0 {
				t.Errorf("the redirect was followed")
			}
			if j.LastError == "" || bytes.Contains([]byte(j.LastError), []byte("whsec_")) {
				t.Errorf("LastError = %q, want a public-safe reason", j.LastError)
			}
		})
	}
}

// jobsOf returns the jobs of a webhook's queue by claiming nothing: it reads
// each job id the handler logged.
func jobsOf(t *testing.T, f *fixture, webhook string) []store.Job {
	t.Helper()
	var out []store.Job
	for _, rec := range f.logs.records(t, "webhook accepted") {
		if rec["webhook"] != webhook {
			continue
		}
		j, err := f.store.GetJob(context.Background(), QueueName(webhook), rec["job_id"].(string))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, j)
	}
	return out
}

func TestBackoff(t *testing.T) {
	fw := &Forwarder{o: Options{RetryBase: time.Second, RetryMax: time.Minute}}
	tests := []struct {
		name    string
		attempt int
		jitter  float64
		want    time.Duration
	}{
		{"first-no-jitter", 1, 0, 500 * time.Millisecond},
		{"first-full-jitter", 1, 1, time.Second},
		{"third-doubles-twice", 3, 0, 2 * time.Second},
		{"capped", 30, 0, 30 * time.Second},
		{"capped-full-jitter", 1000, 1, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fw.o.Jitter = func() float64 { return tt.jitter }
			if got := fw.backoff(tt.attempt); got != tt.want {
				t.Errorf("backoff(%d) = %s, want %s", tt.attempt, got, tt.want)
			}
		})
	}
}

// Run with the real clock: Wake from the Handler delivers promptly, and Run
// returns when its context ends.
func TestForwarderRunDeliversOnWake(t *testing.T) {
	rcv := newReceiver(t, time.Now)
	rcv.up()
	f := newFixture(t, testWebhooks(rcv.url()))
	f.clock = clock.NewFake(time.Now())
	f.store = store.NewMemory(nil)
	f.opts.Store, f.opts.Clock = f.store, clock.System()
	f.opts.PollInterval = time.Hour // only Wake can make it look
	fw := f.forwarder()
	f.opts.Enqueued = fw.Wake
	h := f.handler()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fw.Run(ctx) }()
	time.Sleep(100 * time.Millisecond) // let Run's first pass find nothing: only Wake can deliver now

	f.clock = clock.NewFake(time.Now())
	if rec := serve(h, f.signed("payments", "msg_w", eventBody, "env:STD_NEW")); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(rcv.deliveries()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if diff := cmp.Diff(map[string]int{"msg_w": 1}, idCounts(rcv.deliveries())); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
}
