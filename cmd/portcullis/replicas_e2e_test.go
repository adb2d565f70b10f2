package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/identity"
	"github.com/portcullis-dev/portcullis/internal/secret"
	"github.com/portcullis-dev/portcullis/internal/webhook"
)

// Several `portcullis serve` processes on one Redis behave as one gateway
// (issue 7). The config has no key prefix, so each test owns a database of
// the shared test Redis, emptied when the test starts: DB 12
// (TestReplicasShareOneRedis) and DB 13 (TestReplicaKilledJobReclaimed).
// TestReplicasWhenRedisGoesDown runs its own redis-server, which it kills.

const (
	replicaAdminToken = "adm_replicas_e2e_7c1f04a9"
	// Standard Webhooks secrets: "whsec_" + base64 of 32 bytes.
	replicaWHSecret  = "whsec_cmVwbGljYXMtZTJlLXZlbmRvci13ZWJob29rLWtleSE="
	replicaFwdSecret = "whsec_cmVwbGljYXMtZTJlLWludGVybmFsLWZvcndhcmQtayE="
)

// replicaConfig: every timeouts.request is 1s, so a queued job's lease is
// 1s + 10s. {{CALLER}}, {{ADMIN}} and {{DATA}} are filled by startServeIn.
const replicaConfig = `version: 1
server: {listen: "{{CALLER}}", admin_listen: "{{ADMIN}}", admin_token: env:E2E_ADMIN_TOKEN, webhook_listen: "{{WEBHOOK}}", shutdown_grace: 2s}
state: {backend: redis, redis_url: "{{REDIS}}", data_dir: "{{DATA}}", on_redis_down: {rate_limit: {{ON_DOWN}}}}
log: {level: warn}
callers:
  billing: {tokens: ["{{HASH}}"]}
integrations:
  limited:
    upstream: http://{{VENDOR}}
    egress: {allow: ["{{VENDOR}}"], allow_private: true}
    request_headers: [Content-Type, Idempotency-Key]
    timeouts: {connect: 500ms, request: 1s}
    rate_limit: {rate: 20/s, burst: 5, global: true}
    fallback: {queue: true, queue_always: true}
    routes:
      - {method: GET, path: /v1/ping, callers: [billing]}
      - {method: POST, path: /v1/charges, callers: [billing], queue: true}
  payments:
    upstream: http://{{VENDOR}}
    egress: {allow: ["{{VENDOR}}"], allow_private: true}
    timeouts: {connect: 500ms, request: 1s}
    routes:
      - {method: GET, path: "/v1/charges/{id}", callers: [billing]}
webhooks:
  events:
    path: /webhooks/events
    scheme: standard
    secrets: [env:E2E_WHSEC]
    tolerance: 5m
    forward_to: http://{{RECEIVER}}/hooks
    forward_secret: env:E2E_INTERNAL_WHSEC
internal_egress: {allow: ["{{RECEIVER}}"]}
`

// fleet is what the replicas of one test share.
type fleet struct {
	t                       *testing.T
	redisURL, vendor, recvr string
	tok, hash, onDown       string
	client                  *http.Client
}

func newFleet(t *testing.T, redisURL, vendor string) *fleet {
	tok, hash, err := identity.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	return &fleet{t: t, redisURL: redisURL, vendor: vendor, recvr: freeAddr(t), tok: tok, hash: hash,
		onDown: "fail_open",
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

// replica is one `portcullis serve` process of a fleet.
type replica struct {
	*proc
	webhook string
	f       *fleet
}

func (f *fleet) start() *replica {
	f.t.Helper()
	wh := freeAddr(f.t)
	cfg := strings.NewReplacer("{{WEBHOOK}}", wh, "{{REDIS}}", f.redisURL, "{{ON_DOWN}}", f.onDown,
		"{{HASH}}", f.hash, "{{VENDOR}}", f.vendor, "{{RECEIVER}}", f.recvr).Replace(replicaConfig)
	p := startServeIn(f.t, f.t.TempDir(), "", "", cfg, "E2E_ADMIN_TOKEN="+replicaAdminToken,
		"E2E_WHSEC="+replicaWHSecret, "E2E_INTERNAL_WHSEC="+replicaFwdSecret)
	return &replica{proc: p, webhook: wh, f: f}
}

// do sends a request and returns its outcome — the status, then the
// gateway's X-Portcullis-Error code if any ("200", "429 rate_limited"), or
// "error: …" — and the body. hdr is name, value pairs.
func (f *fleet) do(method, url, body string, hdr ...string) (string, string) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	for i := 0; err == nil && i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	var resp *http.Response
	if err == nil {
		resp, err = f.client.Do(req)
	}
	if err != nil {
		return "error: " + err.Error(), ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(fmt.Sprint(resp.StatusCode, " ", resp.Header.Get("X-Portcullis-Error"))), string(b)
}

// call is a request as caller billing through the replica's caller listener.
func (r *replica) call(method, path string, hdr ...string) string {
	out, _ := r.f.do(method, "http://"+r.caller+path, "", append(hdr, "Authorization", "Bearer "+r.f.tok)...)
	return out
}

// postWebhook sends a Standard Webhooks message signed with the vendor
// secret and returns the status.
func (r *replica) postWebhook(t *testing.T, id, body string) string {
	t.Helper()
	v, err := webhook.NewVerifier(&config.Webhook{Scheme: "standard"})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := v.Sign([]byte(body), []secret.Value{secret.New(replicaWHSecret)}, webhook.SignParams{ID: id, Timestamp: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	hdr := []string{"Content-Type", "application/json"}
	for k := range sig {
		hdr = append(hdr, k, sig.Get(k))
	}
	out, _ := r.f.do("POST", "http://"+r.webhook+"/webhooks/events", body, hdr...)
	return strings.Fields(out)[0]
}

// outcome is one call: when it was sent, when it ended, how.
type outcome struct {
	at, end time.Time
	out     string
}

// load calls path on every replica each period, whatever the answers take,
// until stop is closed; the func it returns waits and gives the outcomes.
func load(rs []*replica, path string, period time.Duration, stop <-chan struct{}) func() [][]outcome {
	var mu sync.Mutex
	var wg sync.WaitGroup
	got := make([][]outcome, len(rs))
	wg.Go(func() {
		for tick := time.Tick(period); ; {
			select {
			case <-stop:
				return
			case <-tick:
			}
			for i, r := range rs {
				wg.Go(func() {
					at := time.Now()
					out := r.call("GET", path)
					mu.Lock()
					got[i] = append(got[i], outcome{at, time.Now(), out})
					mu.Unlock()
				})
			}
		}
	})
	return func() [][]outcome { wg.Wait(); return got }
}

// tally counts the outcomes of calls sent after from and ended before to.
func tally(outs []outcome, from, to time.Time) (map[string]int, []time.Duration) {
	n, took := map[string]int{}, []time.Duration(nil)
	for _, o := range outs {
		if o.at.After(from) && o.end.Before(to) {
			n[o.out]++
			took = append(took, o.end.Sub(o.at))
		}
	}
	slices.Sort(took)
	return n, took
}

// testRedis returns PORTCULLIS_REDIS_URL; without it the test is skipped,
// or fails under PORTCULLIS_REQUIRE_SERVERS=1.
func testRedis(t *testing.T) string {
	t.Helper()
	raw := os.Getenv("PORTCULLIS_REDIS_URL")
	if raw == "" {
		if os.Getenv("PORTCULLIS_REQUIRE_SERVERS") == "1" {
			t.Fatal("PORTCULLIS_REDIS_URL is unset but PORTCULLIS_REQUIRE_SERVERS=1")
		}
		t.Skip("PORTCULLIS_REDIS_URL unset (scripts/test.sh sets it)")
	}
	return raw
}

// sharedRedis returns PORTCULLIS_REDIS_URL switched to database db, emptied.
func sharedRedis(t *testing.T, db int) string {
	t.Helper()
	u, err := url.Parse(testRedis(t))
	var opt *redis.Options
	if err == nil {
		u.Path = fmt.Sprint("/", db)
		opt, err = redis.ParseURL(u.String())
	}
	if err != nil {
		t.Fatal("PORTCULLIS_REDIS_URL is not a redis:// URL")
	}
	c := redis.NewClient(opt)
	defer c.Close()
	if err := c.FlushDB(context.Background()).Err(); err != nil {
		t.Fatalf("FLUSHDB %d: %v", db, err)
	}
	return u.String()
}

func okVendor(t *testing.T) string {
	v := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `{"ok":true}`) }))
	t.Cleanup(v.Close)
	return strings.TrimPrefix(v.URL, "http://")
}

func TestReplicasShareOneRedis(t *testing.T) {
	f := newFleet(t, sharedRedis(t, 12), okVendor(t))
	rs := []*replica{f.start(), f.start(), f.start()}

	t.Run("global-limit-held-across-replicas", func(t *testing.T) {
		stop := make(chan struct{})
		wait := load(rs, "/limited/v1/ping", 5*time.Millisecond, stop) // 200 calls/s per replica
		time.Sleep(3 * time.Second)
		close(stop)
		var every []outcome
		admitted := []int{}
		for _, outs := range wait() {
			n, _ := tally(outs, time.Time{}, time.Now())
			admitted, every = append(admitted, n["200"]), append(every, outs...)
		}
		total, _ := tally(every, time.Time{}, time.Now())
		slices.SortFunc(every, func(a, b outcome) int { return a.at.Compare(b.at) })
		// GCRA from idle: the burst at once, then one call per 1/rate.
		secs := every[len(every)-1].at.Sub(every[0].at).Seconds()
		want := 20*secs + 5
		t.Logf("global limit 20/s burst 5 over 3 replicas: admitted %d (per replica %v) in %.2fs, expected %.1f: accuracy %.1f%%; refused %d",
			total["200"], admitted, secs, want, 100*float64(total["200"])/want, total["429 rate_limited"])
		if len(total) != 2 || total["429 rate_limited"] < total["200"] {
			t.Errorf("outcomes %v, want 200 and (mostly) 429 rate_limited only", total)
		}
		if got := float64(total["200"]); got < 0.9*want || got > 1.1*want {
			t.Errorf("admitted %.0f, want %.0f ±10%% (per-replica limits would admit about %.0f)", got, want, 3*want)
		}
	})

	t.Run("replay-refused-by-another-replica", func(t *testing.T) {
		var mu sync.Mutex
		got := map[string]int{}
		ln, err := net.Listen("tcp", f.recvr)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			mu.Lock()
			got[r.Header.Get("webhook-id")]++
			mu.Unlock()
		})}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { srv.Close() })

		const body = `{"type":"charge.succeeded","data":{"id":"ch_replicas"}}`
		if out := rs[0].postWebhook(t, "msg_replicas_1", body); out != "200" {
			t.Fatalf("replica 1 (first delivery): %s, want 200", out)
		}
		for i, r := range rs[1:] {
			if out := r.postWebhook(t, "msg_replicas_1", body); out != "401" {
				t.Errorf("replica %d (replay): %s, want 401", i+2, out)
			}
		}
		count := func() map[string]int { mu.Lock(); defer mu.Unlock(); return maps.Clone(got) }
		waitFor(t, func() bool { return count()["msg_replicas_1"] > 0 }, "forwarded webhook")
		time.Sleep(time.Second) // room for a wrong second delivery by another replica
		if c := count(); c["msg_replicas_1"] != 1 || len(c) != 1 {
			t.Errorf("forwarded %v, want msg_replicas_1 once", c)
		}
	})

	t.Run("kill-switch-seen-by-all", func(t *testing.T) {
		flip := func(r *replica, action string) {
			url := "http://" + r.admin + "/api/v1/integrations/payments/" + action
			if out, _ := f.do("POST", url, "", "Authorization", "Bearer "+replicaAdminToken); out != "200" {
				t.Fatalf("POST %s: %s", url, out)
			}
		}
		// seen polls the replicas until each answers want; it returns how
		// long each took.
		seen := func(want string) []time.Duration {
			start, took := time.Now(), make([]time.Duration, len(rs))
			for i, r := range rs {
				for out := ""; out != want; time.Sleep(20 * time.Millisecond) {
					if out = r.call("GET", "/payments/v1/charges/ch_1"); time.Since(start) > 5*time.Second {
						t.Fatalf("replica %d still answers %s after 5s, want %s", i+1, out, want)
					}
					took[i] = time.Since(start)
				}
			}
			return took
		}
		seen("200") // every replica has read (and cached) the switch
		flip(rs[0], "disable")
		off := seen("503 integration_disabled")
		flip(rs[2], "enable")
		on := seen("200")
		t.Logf("kill switch flipped on replica 1, seen by replicas 1-3 after %v; enabled on replica 3, seen after %v", off, on)
		if slices.Max(off) > 2*time.Second || slices.Max(on) > 2*time.Second {
			t.Errorf("a replica saw the switch after more than 2s: %v / %v", off, on)
		}
	})
}

// TestReplicaKilledJobReclaimed: replica 1 alone claims a queued call and
// is killed with SIGKILL while the vendor holds it; once the lease (1s
// request timeout + 10s) runs out, another replica delivers it with the
// same Idempotency-Key.
func TestReplicaKilledJobReclaimed(t *testing.T) {
	type attempt struct {
		key string
		at  time.Time
	}
	var mu sync.Mutex
	var attempts []attempt
	first := make(chan struct{})
	v := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // else a closed connection does not end r.Context()
		mu.Lock()
		attempts = append(attempts, attempt{r.Header.Get("Idempotency-Key"), time.Now()})
		n := len(attempts)
		mu.Unlock()
		if n == 1 {
			close(first)
			select { // hold the call until the replica holding it dies
			case <-r.Context().Done():
			case <-time.After(20 * time.Second):
			}
			return
		}
		w.WriteHeader(201)
	}))
	t.Cleanup(v.Close)
	f := newFleet(t, sharedRedis(t, 13), strings.TrimPrefix(v.URL, "http://"))
	snapshot := func() []attempt { mu.Lock(); defer mu.Unlock(); return slices.Clone(attempts) }

	r1 := f.start()
	out, body := f.do("POST", "http://"+r1.caller+"/limited/v1/charges", `{"amount":1}`,
		"Authorization", "Bearer "+f.tok, "Prefer", "respond-async", "Content-Type", "application/json")
	var acc struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal([]byte(body), &acc); err != nil || out != "202" || acc.JobID == "" {
		t.Fatalf("queued call: %s %s", out, body)
	}
	select {
	case <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("replica 1 never delivered the job")
	}
	r2, _ := f.start(), f.start()
	if err := r1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = r1.cmd.Wait()

	waitForUpTo(t, 25*time.Second, func() bool { return len(snapshot()) >= 2 }, "job re-claimed")
	jobURL := "http://" + r2.caller + "/jobs/" + acc.JobID
	waitFor(t, func() bool {
		_, body := f.do("GET", jobURL, "", "Authorization", "Bearer "+f.tok)
		var job struct{ State string }
		return json.Unmarshal([]byte(body), &job) == nil && job.State == "succeeded"
	}, "job succeeded")
	seen := snapshot()
	gap := seen[1].at.Sub(seen[0].at)
	t.Logf("job %s: held by replica 1 (kill -9), delivered by replica 2 or 3 %.1fs after the first attempt; %d vendor attempts",
		acc.JobID, gap.Seconds(), len(seen))
	if len(seen) != 2 || seen[1].key != seen[0].key || seen[0].key == "" {
		t.Errorf("vendor attempts %+v, want two with one Idempotency-Key", seen)
	}
	if gap < 10*time.Second {
		t.Errorf("re-delivered %v after the first attempt: before the 11s lease ran out", gap)
	}
}

// TestReplicasWhenRedisGoesDown: three replicas on a private Redis, which
// is killed under load and started again on the same port. Replica 1 is
// fail_open, replica 2 fail_closed (state.on_redis_down.rate_limit), replica
// 3 (fail_open) is probed with a burst, a webhook and a queued call.
func TestReplicasWhenRedisGoesDown(t *testing.T) {
	testRedis(t) // scripts/start-redis.sh installed redis-server
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	var srv *exec.Cmd
	startRedis := func() {
		srv = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no")
		if err := srv.Start(); err != nil {
			t.Fatalf("redis-server (scripts/start-redis.sh installs it): %v", err)
		}
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		defer c.Close()
		waitFor(t, func() bool { return c.Ping(context.Background()).Err() == nil }, "redis-server on "+addr)
	}
	killRedis := func() { // SIGKILL: no goodbye to its clients
		if srv.ProcessState == nil {
			_ = srv.Process.Kill()
			_ = srv.Wait()
		}
	}
	startRedis()
	t.Cleanup(killRedis)
	f := newFleet(t, "redis://"+addr+"/0", okVendor(t))
	open := f.start()
	f.onDown = "fail_closed"
	closed := f.start()
	f.onDown = "fail_open"
	probe := f.start()
	all := []*replica{open, closed, probe}
	// ready polls every replica's /readyz, in parallel, until all answer want.
	ready := func(want string) time.Duration {
		for start := time.Now(); ; {
			outs := make([]string, len(all))
			var wg sync.WaitGroup
			for i, r := range all {
				wg.Go(func() { outs[i], _ = f.do("GET", "http://"+r.admin+"/readyz", "") })
			}
			if wg.Wait(); !slices.ContainsFunc(outs, func(o string) bool { return o != want }) {
				return time.Since(start)
			}
			if time.Since(start) > 15*time.Second {
				t.Fatalf("/readyz: %v after 15s, want %s everywhere", outs, want)
			}
		}
	}
	ready("200")

	// Replicas 1 and 2 get 5 calls/s each: together half the global 20/s.
	stop := make(chan struct{})
	wait := load(all[:2], "/limited/v1/ping", 200*time.Millisecond, stop)
	time.Sleep(time.Second)
	down := time.Now()
	killRedis()
	red := ready("503")

	// Replica 3 during the outage: 40 calls at once meet the local limiter
	// (20/s, burst 5); a webhook and a queued call are refused, not acknowledged.
	var mu sync.Mutex
	var bw sync.WaitGroup
	burst := map[string]int{}
	for range 40 {
		bw.Go(func() {
			out := probe.call("GET", "/limited/v1/ping")
			mu.Lock()
			burst[out]++
			mu.Unlock()
		})
	}
	bw.Wait()
	if len(burst) != 2 || burst["200"] < 1 || burst["200"] > 20 {
		t.Errorf("40 calls at once during the outage: %v; want some 200, most 429 rate_limited (local floor)", burst)
	}
	if out := probe.postWebhook(t, "msg_outage_1", `{"type":"outage"}`); out != "503" {
		t.Errorf("webhook during the outage: %s, want 503 (not acknowledged, so the vendor retries)", out)
	}
	if out := probe.call("POST", "/limited/v1/charges", "Prefer", "respond-async"); out == "202" || out[0] != '5' {
		t.Errorf("queued call during the outage: %s, want a 5xx refusal, not 202", out)
	}
	time.Sleep(time.Until(down.Add(3 * time.Second)))
	up := time.Now()
	startRedis()
	green := ready("200")
	// Shared limits come back once each replica's prober (every 100 ms)
	// sees the store answer; give that half a second after readiness.
	recovered := time.Now().Add(500 * time.Millisecond)
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	samples := wait()

	t.Logf("Redis killed: /readyz 503 on all 3 replicas after %v; restarted: 200 after %v; 40 calls at once on a fail_open replica during the outage: %v",
		red.Round(time.Millisecond), green.Round(time.Millisecond), burst)
	for i, mode := range []string{"fail_open", "fail_closed"} {
		before, _ := tally(samples[i], time.Time{}, down)
		during, took := tally(samples[i], down.Add(250*time.Millisecond), up)
		after, _ := tally(samples[i], recovered, time.Now())
		if len(took) == 0 {
			t.Fatalf("replica %d: no call made while Redis was down", i+1)
		}
		t.Logf("replica %d (%s): calls before %v, while Redis was down %v (median %v, max %v), after recovery %v",
			i+1, mode, before, during, took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), after)
		down := map[string]string{"fail_open": "200", "fail_closed": "429 rate_limited"}[mode]
		for _, c := range []struct {
			phase string
			got   map[string]int
			want  string
		}{{"before", before, "200"}, {"during", during, down}, {"after", after, "200"}} {
			if len(c.got) != 1 || c.got[c.want] == 0 {
				t.Errorf("replica %d (%s) %s the outage: %v, want only %q", i+1, mode, c.phase, c.got, c.want)
			}
		}
	}
}

// TestKubernetesExample: the ConfigMap's portcullis.yaml passes `check`,
// uses Redis, and the Deployment sets a variable for every env: reference.
func TestKubernetesExample(t *testing.T) {
	read := func(name string, v any) {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "kubernetes", name))
		if err == nil {
			err = yaml.Unmarshal(b, v)
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	var cm struct{ Data map[string]string }
	read("configmap.yaml", &cm)
	path := filepath.Join(t.TempDir(), "portcullis.yaml")
	if err := os.WriteFile(path, []byte(cm.Data["portcullis.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := runCLI(t, "check", "--config", path); code != 0 {
		t.Fatalf("check on the ConfigMap's portcullis.yaml: exit %d\n%s", code, out)
	}
	cfg, _, err := config.Load(path)
	if err != nil || cfg.State.Backend != "redis" {
		t.Fatalf("state.backend: %v %v, want redis", err, cfg.State.Backend)
	}

	var dep struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct{ Env []struct{ Name string } }
				}
			}
		}
	}
	read("deployment.yaml", &dep)
	env := dep.Spec.Template.Spec.Containers[0].Env
	for _, m := range regexp.MustCompile(`env:(\w+)`).FindAllStringSubmatch(cm.Data["portcullis.yaml"], -1) {
		if !slices.ContainsFunc(env, func(e struct{ Name string }) bool { return e.Name == m[1] }) {
			t.Errorf("the config reads env:%s but the Deployment does not set it", m[1])
		}
	}
}
