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

	"github.com/portcullis-dev/portcullis/internal/config"
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
		v.mu.Unlock()
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
	r, logs := newFakeResolver(t, nil, fp)
	c := &config.Credential{Type: "bearer", Secret: config.MustRef("env:VENDOR_KEY"), TTL: config.Dur(time.Hour), MaxStale: config.Dur(time.Hour)}
	o := r.o
	in, err := NewInjector("payments", c, r, o)
	if err != nil {
		t.Fatal(err)
	}
	return in.(*staticInjector), r, logs
}

func post(t *testing.T, ctx context.Context, tr http.RoundTripper, url, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	return resp, err
}

func TestTransportInjectsWithoutTouchingCallerRequest(t *testing.T) {
	fp := &fakeProvider{val: "key-one-abcdef", version: "1"}
	in, _, _ := staticSetup(t, fp)
	v := newFakeVendor(t, "key-one-abcdef")
	tr := &Transport{Base: testBase(), Injector: in, Integration: "payments"}
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
	if diff := cmp.Diff(Info{Version: "1"}, info); diff != "" {
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

func TestTransportMarksRevokedAfterSecondRejection(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			fp := &fakeProvider{val: "key-one-abcdef", version: "1"}
			in, _, logs := staticSetup(t, fp)
			v := newFakeVendor(t) // accepts nothing
			v.status = status
			var alerts atomic.Int64
			tr := &Transport{Base: testBase(), Injector: in, Integration: "payments", OnRevoked: func(name string) {
				if name == "payments" {
					alerts.Add(1)
				}
			}}
			ctx := context.Background()
			_, err := post(t, ctx, tr, v.srv.URL, "body")
			if !errors.Is(err, ErrRevoked) || !errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v, want ErrRevoked", err)
			}
			if v.calls.Load() != 2 || alerts.Load() != 1 || !in.Status().Revoked {
				t.Fatalf("vendor calls %d (want 2), alerts %d (want 1), revoked %v", v.calls.Load(), alerts.Load(), in.Status().Revoked)
			}
			// While revoked, nothing reaches the vendor and no alert repeats.
			for range 5 {
				if _, err := post(t, ctx, tr, v.srv.URL, "body"); !errors.Is(err, ErrRevoked) {
					t.Fatalf("err = %v, want ErrRevoked", err)
				}
			}
			if v.calls.Load() != 2 || alerts.Load() != 1 {
				t.Errorf("revoked credential still used: vendor calls %d, alerts %d", v.calls.Load(), alerts.Load())
			}
			// A new version at the source clears the mark.
			fp.set("key-two-abcdef", "2", nil)
			v.accept("key-two-abcdef")
			if err := in.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			if resp, err := post(t, ctx, tr, v.srv.URL, "body"); err != nil || resp.StatusCode != 200 {
				t.Fatalf("after rotation: %v %v", resp, err)
			}
			if in.Status().Revoked || !strings.Contains(logs.String(), "credential revoked") {
				t.Errorf("revoked mark not cleared, or revocation not logged")
			}
		})
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

// RFC 6750 insufficient_scope is a permission answer, not a bad credential.
func TestTransportPassesInsufficientScope(t *testing.T) {
	fp := &fakeProvider{val: "key-one-abcdef", version: "1"}
	in, _, _ := staticSetup(t, fp)
	v := newFakeVendor(t)
	v.status, v.wwwAuth = http.StatusForbidden, `Bearer error="insufficient_scope", scope="admin"`
	tr := &Transport{Base: testBase(), Injector: in, Integration: "payments"}
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

// If refreshing itself fails, the caller gets ErrUnavailable and the
// credential is not marked revoked.
func TestTransportRefreshFailure(t *testing.T) {
	fp := &fakeProvider{val: "key-one-abcdef", version: "1"}
	in, _, _ := staticSetup(t, fp)
	if _, _, err := apply(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	fp.set("", "", errors.New("store down"))
	v := newFakeVendor(t)
	tr := &Transport{Base: testBase(), Injector: in, Integration: "payments"}
	_, err := post(t, context.Background(), tr, v.srv.URL, "x")
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrRevoked) || v.calls.Load() != 1 || in.Status().Revoked {
		t.Errorf("err %v, vendor calls %d, revoked %v; want ErrUnavailable after 1 call, not revoked", err, v.calls.Load(), in.Status().Revoked)
	}
}

func TestQueryCredential(t *testing.T) {
	t.Setenv("PCS_TEST_QUERY_KEY", canary)
	var got string
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.URL.RawQuery }))
	defer vendor.Close()
	c := &config.Credential{Type: "query", Param: "api_key", Secret: config.MustRef("env:PCS_TEST_QUERY_KEY")}
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
