package fallback

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/store"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newStale(cfg StaleConfig) (*StaleCache, *clock.Fake) {
	clk := clock.NewFake(t0)
	return NewStaleCache(store.NewMemory(clk), cfg, clk), clk
}

var chargeKey = StaleKey{Integration: "payments", Caller: "billing", Method: "GET", Path: "/v1/charges/ch_1", Query: "expand=customer"}

func okEntry(body string) *Entry {
	return &Entry{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)}
}

func TestStaleServedWithinStaleForNotAfter(t *testing.T) {
	c, clk := newStale(StaleConfig{StaleFor: 10 * time.Minute})
	ctx := context.Background()
	if err := c.Put(ctx, chargeKey, okEntry(`{"id":"ch_1"}`)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10*time.Minute - time.Millisecond)
	e, age, ok := c.Get(ctx, chargeKey)
	if !ok {
		t.Fatal("miss just inside stale_for")
	}
	if age != 10*time.Minute-time.Millisecond || string(e.Body) != `{"id":"ch_1"}` || e.Status != 200 {
		t.Errorf("got %d %q aged %v", e.Status, e.Body, age)
	}
	clk.Advance(time.Millisecond)
	if _, _, ok := c.Get(ctx, chargeKey); ok {
		t.Error("served at stale_for: entries must not outlive it")
	}
}

func TestStaleKeyIsolation(t *testing.T) {
	tests := []struct {
		name   string
		shared bool
		other  StaleKey
		want   bool
	}{
		{name: "same-request-hits", other: chargeKey, want: true},
		{name: "other-caller-misses", other: withCaller(chargeKey, "support"), want: false},
		{name: "other-caller-hits-when-shared", shared: true, other: withCaller(chargeKey, "support"), want: true},
		{name: "other-query-misses", other: StaleKey{"payments", "billing", "GET", "/v1/charges/ch_1", ""}, want: false},
		{name: "other-path-misses", other: StaleKey{"payments", "billing", "GET", "/v1/charges/ch_2", "expand=customer"}, want: false},
		{name: "other-integration-misses", other: StaleKey{"crm", "billing", "GET", "/v1/charges/ch_1", "expand=customer"}, want: false},
		{name: "field-boundaries-do-not-collide", other: StaleKey{"payments", "billing", "GET", "/v1/charges/ch_1expand=customer", ""}, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newStale(StaleConfig{StaleFor: time.Minute, Shared: tc.shared})
			if err := c.Put(context.Background(), chargeKey, okEntry("x")); err != nil {
				t.Fatal(err)
			}
			if _, _, ok := c.Get(context.Background(), tc.other); ok != tc.want {
				t.Errorf("hit = %v, want %v", ok, tc.want)
			}
		})
	}
}

func withCaller(k StaleKey, caller string) StaleKey { k.Caller = caller; return k }

func TestStaleNotCacheable(t *testing.T) {
	tests := []struct {
		name   string
		shared bool
		method string
		entry  *Entry
	}{
		{name: "post", method: "POST", entry: okEntry("x")},
		{name: "server-error", method: "GET", entry: &Entry{Status: 500}},
		{name: "not-found", method: "GET", entry: &Entry{Status: 404}},
		{name: "partial-content", method: "GET", entry: &Entry{Status: 206}},
		{name: "no-store", method: "GET", entry: &Entry{Status: 200, Header: http.Header{"Cache-Control": {"max-age=0, No-Store"}}}},
		{name: "private-when-shared", shared: true, method: "GET", entry: &Entry{Status: 200, Header: http.Header{"Cache-Control": {"private"}}}},
		{name: "body-over-limit", method: "GET", entry: okEntry(strings.Repeat("x", 11))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newStale(StaleConfig{StaleFor: time.Minute, Shared: tc.shared, MaxBodyBytes: 10})
			k := chargeKey
			k.Method = tc.method
			if err := c.Put(context.Background(), k, tc.entry); !errors.Is(err, ErrNotCacheable) {
				t.Errorf("Put = %v, want ErrNotCacheable", err)
			}
			if _, _, ok := c.Get(context.Background(), k); ok {
				t.Error("refused entry was served")
			}
		})
	}
	// private is fine in a per-caller cache.
	c, _ := newStale(StaleConfig{StaleFor: time.Minute})
	if err := c.Put(context.Background(), chargeKey, &Entry{Status: 200, Header: http.Header{"Cache-Control": {"private"}}}); err != nil {
		t.Errorf("private response in a per-caller cache: %v", err)
	}
}

func TestStaleKeepsOnlyAllowedHeaders(t *testing.T) {
	c, _ := newStale(StaleConfig{StaleFor: time.Minute})
	e := okEntry("x")
	e.Header.Set("Set-Cookie", "session=vendor-secret")
	e.Header.Set("X-Vendor-Debug", "internal")
	e.Header.Set("Etag", `"v1"`)
	if err := c.Put(context.Background(), chargeKey, e); err != nil {
		t.Fatal(err)
	}
	got, _, _ := c.Get(context.Background(), chargeKey)
	want := http.Header{"Content-Type": {"application/json"}, "Etag": {`"v1"`}}
	if diff := cmp.Diff(want, got.Header); diff != "" {
		t.Errorf("kept headers (-want +got):\n%s", diff)
	}
}

func TestStaleCapture(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		readAll   bool
		wantSaved bool
	}{
		{name: "read-to-end-is-stored", body: "hello", readAll: true, wantSaved: true},
		{name: "closed-early-is-not-stored", body: "hello", readAll: false, wantSaved: false},
		{name: "over-limit-is-not-stored", body: strings.Repeat("x", 11), readAll: true, wantSaved: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newStale(StaleConfig{StaleFor: time.Minute, MaxBodyBytes: 10})
			resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/plain"}},
				Body: io.NopCloser(strings.NewReader(tc.body)), ContentLength: -1}
			c.Capture(context.Background(), chargeKey, resp)
			var got []byte
			if tc.readAll {
				got, _ = io.ReadAll(resp.Body)
			} else {
				buf := make([]byte, 2)
				n, _ := resp.Body.Read(buf)
				got = buf[:n]
			}
			resp.Body.Close()
			if tc.readAll && string(got) != tc.body {
				t.Errorf("caller read %q, want %q: capture must not alter the stream", got, tc.body)
			}
			e, _, ok := c.Get(context.Background(), chargeKey)
			if ok != tc.wantSaved {
				t.Fatalf("stored = %v, want %v", ok, tc.wantSaved)
			}
			if ok && string(e.Body) != tc.body {
				t.Errorf("stored body %q, want %q", e.Body, tc.body)
			}
		})
	}
}

func TestStaleServe(t *testing.T) {
	rec := httptest.NewRecorder()
	okEntry(`{"id":"ch_1"}`).Serve(rec, 95*time.Second)
	if rec.Code != 200 || rec.Body.String() != `{"id":"ch_1"}` {
		t.Errorf("served %d %q", rec.Code, rec.Body.String())
	}
	for k, want := range map[string]string{HeaderFallback: "stale", "Age": "95", "Content-Type": "application/json"} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// failingKV is a store that is down.
type failingKV struct{}

var errDown = errors.New("connection refused")

func (failingKV) SetNX(context.Context, string, []byte, time.Duration) (bool, error) {
	return false, errDown
}
func (failingKV) Set(context.Context, string, []byte, time.Duration) error { return errDown }
func (failingKV) Get(context.Context, string) ([]byte, error)              { return nil, errDown }
func (failingKV) Delete(context.Context, string) error                     { return errDown }

func TestStaleStoreDownIsAMiss(t *testing.T) {
	c := NewStaleCache(failingKV{}, StaleConfig{StaleFor: time.Minute}, nil)
	if err := c.Put(context.Background(), chargeKey, okEntry("x")); !errors.Is(err, errDown) {
		t.Errorf("Put = %v, want the store's error", err)
	}
	if _, _, ok := c.Get(context.Background(), chargeKey); ok {
		t.Error("Get hit with the store down")
	}
}
