package credential

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

// fakeVendor accepts requests whose Authorization is Bearer of one of the
// accepted keys, and records the bodies it received.
type fakeVendor struct {
	srv      *httptest.Server
	calls    atomic.Int64
	mu       sync.Mutex
	accepted map[string]bool
	bodies   []string
	status   int    // answer for a rejected key (default 401)
	wwwAuth  string // WWW-Authenticate on rejection
	// forbidden is a path the vendor answers 403 for every key (a resource
	// the key may not touch, or GitHub's rate-limit 403).
	forbidden string
}

func newFakeVendor(t *testing.T, keys ...string) *fakeVendor {
	t.Helper()
	v := &fakeVendor{status: http.StatusUnauthorized}
	v.accept(keys...)
	v.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		key, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		v.mu.Lock()
		v.bodies = append(v.bodies, string(b))
		ok, status, www := v.accepted[key], v.status, v.wwwAuth
		forbidden := v.forbidden != "" && r.URL.Path == v.forbidden
		v.mu.Unlock()
		if forbidden {
			http.Error(w, `{"message":"Resource not accessible by integration"}`, http.StatusForbidden)
			return
		}
		if !ok {
			if www != "" {
				w.Header().Set("WWW-Authenticate", www)
			}
			http.Error(w, `{"error":"bad key"}`, status)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(v.srv.Close)
	return v
}

func (v *fakeVendor) accept(keys ...string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.accepted = map[string]bool{}
	for _, k := range keys {
		v.accepted[k] = true
	}
}

// staticSetup is a bearer injector over a fake env: provider.
func staticSetup(t *testing.T, fp *fakeProvider) (*staticInjector, *Resolver, *syncBuffer) {
	t.Helper()
	return staticSetupClock(t, fp, nil)
}

func staticSetupClock(t *testing.T, fp *fakeProvider, clock *fakeClock) (*staticInjector, *Resolver, *syncBuffer) {
	t.Helper()
	r, logs := newFakeResolver(t, clock, fp)
	c := &Spec{Type: "bearer", Secret: conf.MustRef("env:VENDOR_KEY"), TTL: conf.Dur(time.Hour), MaxStale: conf.Dur(time.Hour)}
	o := r.o
	in, err := NewInjector("payments", c, r, o)
	if err != nil {
		t.Fatal(err)
	}
	return in.(*staticInjector), r, logs
}

func post(t *testing.T, ctx context.Context, tr http.RoundTripper, url, body string) (*http.Response, error) {
	t.Helper()
	resp, _, err := postAs(t, ctx, tr, "", url, body)
	return resp, err
}

// postAs sends body on behalf of caller and returns the response with its
// body read.
func postAs(t *testing.T, ctx context.Context, tr http.RoundTripper, caller, url, body string) (*http.Response, string, error) {
	t.Helper()
	if caller != "" {
		ctx = WithCaller(ctx, caller)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp, string(b), nil
}

func TestTransportInjectsWithoutTouchingCallerRequest(t *testing.T) {
	fp := &fakeProvider{val: "key-one-abcdef", version: "1"}
	in, _, _ := staticSetup(t, fp)
	v := newFakeVendor(t, "key-one-abcdef")
	tr := &Transport{Base: http.DefaultTransport, Injector: in, Integration: "payments"}
	var info Info
	req, _ := http.NewRequestWithContext(WithInfoSink(context.Background(), &info), http.MethodGet, v.srv.URL+"/v1/x", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("RoundTrip: %v %v", resp, err)
	}
	resp.Body.Close()
	if req.Header.Get("Authorization") != "" || resp.Request != req {
		t.Errorf("the caller's request was modified or not put back on the response")
	}
	if diff := cmp.Diff(Info{Version: "1"}, info, cmpopts.IgnoreUnexported(Info{})); diff != "" {
		t.Errorf("info sink (-want +got):\n%s", diff)
	}
}

// Rotation at the source while the cache still holds the old key: one 401,
// one refresh, one retry with the same body, success.
func TestTransportRefreshesAndRetriesOnce(t *testing.T) {
	fp := &fakeProvider{val: "key-one-abcdef", version: "1"}
	in, _, logs := staticSetup(t, fp)
	ctx := context.Background()
	if _, _, err := apply(ctx, in); err != nil {
		t.Fatal(err)
	}
	fp.set("key-two-abcdef", "2", nil)
	v := newFakeVendor(t, "key-two-abcdef")
	tr := &Transport{Base: testBase(), Injector: in, Integration: "payments", Logger: in.o.Logger}
	var info Info
	resp, err := post(t, WithInfoSink(ctx, &info), tr, v.srv.URL, `{"amount":100}`)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("RoundTrip: %v %v", resp, err)
	}
	if diff := cmp.Diff([]string{`{"amount":100}`, `{"amount":100}`}, v.bodies); diff != "" {
		t.Errorf("vendor bodies (-want +got):\n%s", diff)
	}
	if info.Version != "2" || fp.count() != 2 {
		t.Errorf("final attempt version %q, provider reads %d; want 2 and 2", info.Version, fp.count())
	}
	if !strings.Contains(logs.String(), "refreshing and retrying once") && !strings.Contains(logs.String(), "secret rotated") {
		t.Errorf("no log of the refresh: %s", logs)
	}
}

// The revocation rule of issue 13: a rejection is retried once with fresh
// material; the credential is revoked only when the vendor rejected the
// fresh material for two distinct callers; every caller gets the vendor's
// own answer for its request; while revoked nothing reaches the vendor; a
// new version at the source clears the mark. A 403 counts only with
// RevokeOn403.
func TestTransportRevokesOnlyWhenTwoCallersSeeFreshMaterialRejected(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			fp := &fakeProvider{val: "key-one-abcdef", version: "1"}
			clock := newClock()
			in, _, logs := staticSetupClock(t, fp, clock)
			ctx := context.Background()
			if _, _, err := apply(ctx, in); err != nil { // key-one is cached
				t.Fatal(err)
			}
			fp.set("key-two-abcdef", "2", nil) // rotated at the source…
			v := newFakeVendor(t)              // …to a key the vendor refuses too
			v.status = status
			var alerts atomic.Int64
			tr := &Transport{Base: testBase(), Injector: in, Integration: "payments", RevokeOn403: status == http.StatusForbidden, OnRevoked: func(name string) {
				if name == "payments" {
					alerts.Add(1)
				}
			}}
			// Caller a: key-one refused, refreshed to key-two, retried, refused.
			resp, body, err := postAs(t, ctx, tr, "a", v.srv.URL, "body")
			if err != nil || resp.StatusCode != status || !strings.Contains(body, "bad key") {
				t.Fatalf("caller a: %v %v %q; want the vendor's own %d", resp, err, body, status)
			}
			if v.calls.Load() != 2 || fp.count() != 2 {
				t.Fatalf("vendor calls %d, provider reads %d; want 2 and 2 (one refresh, one retry)", v.calls.Load(), fp.count())
			}
			// However often caller a repeats it, the credential stays in use.
			for range 5 {
				if resp, _, err := postAs(t, ctx, tr, "a", v.srv.URL, "body"); err != nil || resp.StatusCode != status {
					t.Fatalf("caller a again: %v %v", resp, err)
				}
			}
			if in.Status().Revoked || alerts.Load() != 0 {
				t.Fatalf("one caller's traffic revoked the credential")
			}
			// A second caller sees the fresh key refused too: revoked.
			if resp, _, err := postAs(t, ctx, tr, "b", v.srv.URL, "body"); err != nil || resp.StatusCode != status {
				t.Fatalf("caller b: %v %v; want the vendor's own %d", resp, err, status)
			}
			if !in.Status().Revoked || alerts.Load() != 1 || !strings.Contains(logs.String(), "credential revoked") {
				t.Fatalf("revoked %v, alerts %d (want 1), logs %s", in.Status().Revoked, alerts.Load(), logs)
			}
			// While revoked, nothing reaches the vendor and no alert repeats.
			calls := v.calls.Load()
			for range 3 {
				if _, _, err := postAs(t, ctx, tr, "c", v.srv.URL, "body"); !errors.Is(err, ErrRevoked) || !errors.Is(err, ErrUnavailable) {
					t.Fatalf("err = %v, want ErrRevoked", err)
				}
			}
			if v.calls.Load() != calls || alerts.Load() != 1 {
				t.Errorf("revoked credential still used: vendor calls %d→%d, alerts %d", calls, v.calls.Load(), alerts.Load())
			}
			// A new version at the source clears the mark.
			fp.set("key-three-abcdef", "3", nil)
			v.accept("key-three-abcdef")
			if err := in.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			if resp, _, err := postAs(t, ctx, tr, "c", v.srv.URL, "body"); err != nil || resp.StatusCode != 200 {
				t.Fatalf("after rotation: %v %v", resp, err)
			}
			if in.Status().Revoked {
				t.Errorf("revoked mark not cleared")
			}
		})
	}
}

// A refresh that yields the same material does not revoke, and does not
// retry: the vendor's answer is passed on, for any number of callers. The
// refreshes it triggers are spaced by refreshCooldown.
func TestTransportSameMaterialNeverRevokes(t *testing.T) {
	fp := &fakeProvider{val: "key-one-abcdef", version: "1"}
	clock := newClock()
	in, _, _ := staticSetupClock(t, fp, clock)
	v := newFakeVendor(t) // refuses key-one, which the store keeps serving
	tr := &Transport{Base: testBase(), Injector: in, Integration: "payments"}
	ctx := context.Background()
	for i, caller := range []string{"a", "b", "c", "a", "b", "c"} {
		resp, body, err := postAs(t, ctx, tr, caller, v.srv.URL, "body")
		if err != nil || resp.StatusCode != 401 || !strings.Contains(body, "bad key") {
			t.Fatalf("call %d (%s): %v %v %q; want the vendor's 401", i, caller, resp, err, body)
		}
	}
	if v.calls.Load() != 6 || in.Status().Revoked {
		t.Errorf("vendor calls %d (want 6: no retry with the same key), revoked %v", v.calls.Load(), in.Status().Revoked)
	}
	if fp.count() != 2 {
		t.Errorf("provider reads %d; want 2 (the first read, one refresh inside the cooldown)", fp.count())
	}
	clock.Advance(refreshCooldown)
	if _, _, err := postAs(t, ctx, tr, "a", v.srv.URL, "body"); err != nil || fp.count() != 3 {
		t.Errorf("after the cooldown: err %v, provider reads %d; want a refresh (3)", err, fp.count())
	}
}

// Issue 13 item 1: by default a 403 is the vendor's answer about one
// resource. A caller hammering a route the vendor forbids gets that 403,
// causes no refresh and no revocation, and another caller is served.
func TestTransport403HammerCannotDenyOtherCallers(t *testing.T) {
	fp := &fakeProvider{val: "key-one-abcdef", version: "1"}
	in, _, _ := staticSetup(t, fp)
	v := newFakeVendor(t, "key-one-abcdef")
	v.forbidden = "/repos/secret"
	var alerts atomic.Int64
	tr := &Transport{Base: testBase(), Injector: in, Integration: "github", OnRevoked: func(string) { alerts.Add(1) }}
	ctx := context.Background()
	for i := range 50 {
		resp, body, err := postAs(t, ctx, tr, "attacker", v.srv.URL+"/repos/secret", "x")
		if err != nil || resp.StatusCode != 403 || !strings.Contains(body, "Resource not accessible") {
			t.Fatalf("call %d: %v %v %q; want the vendor's own 403", i, resp, err, body)
		}
	}
	resp, body, err := postAs(t, ctx, tr, "victim", v.srv.URL+"/v1/ok", "x")
	if err != nil || resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("victim: %v %v %q; want the vendor's 200", resp, err, body)
	}
	if v.calls.Load() != 51 || fp.count() != 1 || alerts.Load() != 0 || in.Status().Revoked {
		t.Errorf("vendor calls %d (want 51), provider reads %d (want 1), alerts %d, revoked %v", v.calls.Load(), fp.count(), alerts.Load(), in.Status().Revoked)
	}
}

// Even a caller whose requests the vendor rejects with 401 after every
// refresh (an OAuth2 token endpoint hands out new tokens each time) cannot
// revoke the credential alone, and a success by anyone clears its strikes.
func TestTransport401HammerByOneCallerDoesNotRevoke(t *testing.T) {
	idp := newFakeIdP(t)
	t.Setenv("PCS_TEST_CLIENT_SECRET", "client-secret-abcdef")
	clock := newClock()
	in, _ := newTestInjector(t, oauthCred(idp.srv.URL), clock)
	var mu sync.Mutex
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/admin" { // refuses every token: says 401, means "not for you"
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(vendor.Close)
	tr := &Transport{Base: testBase(), Injector: in, Integration: "crm"}
	ctx := context.Background()
	for range 4 {
		for range 3 {
			if resp, _, err := postAs(t, ctx, tr, "attacker", vendor.URL+"/admin", "x"); err != nil || resp.StatusCode != 401 {
				t.Fatalf("attacker: %v %v; want the vendor's 401", resp, err)
			}
		}
		clock.Advance(refreshCooldown) // the attacker may trigger refreshes, spaced
	}
	if resp, body, err := postAs(t, ctx, tr, "victim", vendor.URL+"/v1/ok", "x"); err != nil || resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("victim: %v %v %q", resp, err, body)
	}
	if in.Status().Revoked {
		t.Error("revoked by one caller's traffic")
	}
	if n := idp.count(); n > 5 {
		t.Errorf("token endpoint called %d times for 12 refused calls; want at most 5 (one per cooldown)", n)
	}
}

// A body that cannot be replayed: refresh for next time, return the 401.
func TestTransportNonReplayableBody(t *testing.T) {
	fp := &fakeProvider{val: "key-one-abcdef", version: "1"}
	in, _, _ := staticSetup(t, fp)
	v := newFakeVendor(t)
	tr := &Transport{Base: testBase(), Injector: in, Integration: "payments"}
	req, _ := http.NewRequest(http.MethodPost, v.srv.URL, io.NopCloser(strings.NewReader("stream")))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(string(b), "bad key") || v.calls.Load() != 1 || fp.count() != 2 {
		t.Errorf("status %d body %q vendor calls %d provider reads %d; want the vendor's 401, 1 call, a refresh", resp.StatusCode, b, v.calls.Load(), fp.count())
	}
}

// RFC 6750 insufficient_scope is a permission answer, not a bad credential,
// even where 403 otherwise counts as a rejection.
func TestTransportPassesInsufficientScope(t *testing.T) {
	fp := &fakeProvider{val: "key-one-abcdef", version: "1"}
	in, _, _ := staticSetup(t, fp)
	v := newFakeVendor(t)
	v.status, v.wwwAuth = http.StatusForbidden, `Bearer error="insufficient_scope", scope="admin"`
	tr := &Transport{Base: testBase(), Injector: in, Integration: "payments", RevokeOn403: true}
	resp, err := post(t, context.Background(), tr, v.srv.URL, "x")
	if err != nil || resp.StatusCode != 403 || v.calls.Load() != 1 || fp.count() != 1 || in.Status().Revoked {
		t.Errorf("err %v status %v calls %d reads %d; want the 403 passed through untouched", err, resp, v.calls.Load(), fp.count())
	}
}

// A burst of 401s causes one refresh, and each request at most one retry.
func TestTransport401BurstRefreshesOnce(t *testing.T) {
	fp := &fakeProvider{val: "key-one-abcdef", version: "1"}
	in, _, _ := staticSetup(t, fp)
	ctx := context.Background()
	if _, _, err := apply(ctx, in); err != nil {
		t.Fatal(err)
	}
	fp.set("key-two-abcdef", "2", nil)
	fp.delay = 50 * time.Millisecond
	v := newFakeVendor(t, "key-two-abcdef")
	tr := &Transport{Base: testBase(), Injector: in, Integration: "payments"}
	const n = 50
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range n {
		wg.Go(func() {
			if resp, err := post(t, ctx, tr, v.srv.URL, "x"); err != nil || resp.StatusCode != 200 {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 || fp.count() != 2 || v.calls.Load() > 2*n {
		t.Errorf("failed %d (want 0), provider reads %d (want 2: one refresh), vendor calls %d (want ≤ %d)", failed.Load(), fp.count(), v.calls.Load(), 2*n)
	}
}

// If refreshing itself fails, the caller gets the vendor's own answer and
// the credential is not marked revoked.
func TestTransportRefreshFailure(t *testing.T) {
	fp := &fakeProvider{val: "key-one-abcdef", version: "1"}
	in, _, _ := staticSetup(t, fp)
	if _, _, err := apply(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	fp.set("", "", errors.New("store down"))
	v := newFakeVendor(t)
	tr := &Transport{Base: testBase(), Injector: in, Integration: "payments"}
	resp, body, err := postAs(t, context.Background(), tr, "a", v.srv.URL, "x")
	if err != nil || resp.StatusCode != 401 || !strings.Contains(body, "bad key") || v.calls.Load() != 1 || in.Status().Revoked {
		t.Errorf("err %v, resp %v, vendor calls %d, revoked %v; want the vendor's 401 after 1 call, not revoked", err, resp, v.calls.Load(), in.Status().Revoked)
	}
}

func TestQueryCredential(t *testing.T) {
	t.Setenv("PCS_TEST_QUERY_KEY", canary)
	var got string
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.URL.RawQuery }))
	defer vendor.Close()
	c := &Spec{Type: "query", Param: "api_key", Secret: conf.MustRef("env:PCS_TEST_QUERY_KEY")}
	in, _ := newTestInjector(t, c, nil)
	tr := &Transport{Base: testBase(), Injector: in, Integration: "maps"}
	req, _ := http.NewRequest(http.MethodGet, vendor.URL+"/geo?q=a%20b&api_key=caller-supplied&z=1", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "q=a%20b&z=1&api_key=" + canary; got != want {
		t.Errorf("vendor query = %q, want %q", got, want)
	}
	assertNoCanary(t, canary, resp.Request.URL.String(), req.URL.String())
}

func TestSetQueryParam(t *testing.T) {
	tests := []struct{ name, raw, want string }{
		{name: "empty", raw: "", want: "key=v%26x"},
		{name: "kept-verbatim", raw: "b=2&a=%2F", want: "b=2&a=%2F&key=v%26x"},
		{name: "caller-value-dropped", raw: "key=evil&a=1", want: "a=1&key=v%26x"},
		{name: "escaped-caller-value-dropped", raw: "k%65y=evil&a=1&key", want: "a=1&key=v%26x"},
		{name: "empty-pairs-dropped", raw: "&&a=1&", want: "a=1&key=v%26x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := setQueryParam(tt.raw, "key", "v&x"); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzSetQueryParam(f *testing.F) {
	for _, s := range []string{"", "b=2&a=%2F", "key=evil&a=1", "k%65y=evil&a=1&key", "&&a=1&", "%zz=1"} {
		f.Add(s, "key", "value")
	}
	f.Fuzz(func(t *testing.T, raw, name, value string) {
		if name == "" {
			return
		}
		out := setQueryParam(raw, name, value)
		q, err := parseQueryLenient(out)
		if err != nil {
			return // the caller's own malformed pairs stay malformed
		}
		if got := q[name]; len(got) != 1 || got[0] != value {
			t.Fatalf("setQueryParam(%q, %q, %q) = %q: %s=%q, want exactly one %q", raw, name, value, out, name, got, value)
		}
	})
}

func parseQueryLenient(s string) (map[string][]string, error) {
	m := map[string][]string{}
	for pair := range strings.SplitSeq(s, "&") {
		k, v, _ := strings.Cut(pair, "=")
		uk, err := urlUnescape(k)
		if err != nil {
			continue // a malformed pair of the caller's is not ours
		}
		uv, err := urlUnescape(v)
		if err != nil {
			return nil, err
		}
		m[uk] = append(m[uk], uv)
	}
	return m, nil
}

func urlUnescape(s string) (string, error) { return url.QueryUnescape(s) }
