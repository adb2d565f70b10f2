package chaos

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// adminServer serves AdminHandler behind a bearer token check, as the
// gateway mounts it.
func adminServer(t *testing.T, inj *Injector) *httptest.Server {
	t.Helper()
	h := AdminHandler(inj, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer admin-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestAdminAPI(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	inj := NewInjector(nil, true, func() time.Time { return now })
	srv := adminServer(t, inj)
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer admin-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantBody                 string
	}{
		{name: "start-error-fault", method: "POST", path: "/api/v1/chaos", body: `{"integration":"payments","kind":"error","status":503,"for":"5m"}`,
			wantStatus: 201, wantBody: `"expires_at": "2026-11-25T12:05:00Z"`},
		{name: "start-latency-default-ttl", method: "POST", path: "/api/v1/chaos", body: `{"integration":"sms","route":"/x","kind":"latency","latency":"250ms","probability":0.5}`,
			wantStatus: 201, wantBody: `"latency": "250ms"`},
		{name: "list-shows-both", method: "GET", path: "/api/v1/chaos", wantStatus: 200, wantBody: `"id": "f2"`},
		{name: "unknown-field-refused", method: "POST", path: "/api/v1/chaos", body: `{"integration":"a","kind":"reset","probabilty":0.1}`,
			wantStatus: 400, wantBody: "probabilty"},
		{name: "bad-kind-refused", method: "POST", path: "/api/v1/chaos", body: `{"integration":"a","kind":"boom"}`, wantStatus: 400, wantBody: "kind"},
		{name: "ttl-over-max-refused", method: "POST", path: "/api/v1/chaos", body: `{"integration":"a","kind":"reset","for":"48h"}`, wantStatus: 400, wantBody: "for must be"},
		{name: "not-json-refused", method: "POST", path: "/api/v1/chaos", body: `integration=a`, wantStatus: 400},
		{name: "delete-one", method: "DELETE", path: "/api/v1/chaos/f1", wantStatus: 204},
		{name: "delete-unknown", method: "DELETE", path: "/api/v1/chaos/f1", wantStatus: 404},
		{name: "delete-by-integration", method: "DELETE", path: "/api/v1/chaos?integration=sms", wantStatus: 200, wantBody: `"removed": 1`},
		{name: "list-empty", method: "GET", path: "/api/v1/chaos", wantStatus: 200, wantBody: `"faults": []`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := do(tc.method, tc.path, tc.body)
			if status != tc.wantStatus || !strings.Contains(body, tc.wantBody) {
				t.Errorf("%s %s: %d %s\nwant %d containing %q", tc.method, tc.path, status, body, tc.wantStatus, tc.wantBody)
			}
		})
	}
}

func TestAdminRefusesWhenDisabled(t *testing.T) {
	srv := adminServer(t, NewInjector(nil, false, nil))
	c := &Client{Admin: srv.URL}
	c.Token = tokenValue("admin-token")
	_, err := c.Start(t.Context(), Fault{Integration: "payments", Kind: ErrorStatus}, 0)
	if !errors.Is(err, ErrAdmin) || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "chaos.enabled") {
		t.Errorf("Start on a disabled gateway: %v, want a 403 naming chaos.enabled", err)
	}
	l, err := c.List(t.Context())
	if err != nil || l.Enabled {
		t.Errorf("List: %+v %v, want enabled=false", l, err)
	}
}

func TestClientRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	inj := NewInjector(nil, true, func() time.Time { return now })
	srv := adminServer(t, inj)
	c := &Client{Admin: srv.URL, Token: tokenValue("admin-token")}
	got, err := c.Start(t.Context(), Fault{Integration: "ai", Route: "/v1/chat/completions", Kind: Latency, Latency: 3 * time.Second, Probability: 0.25}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := Fault{ID: "f1", Integration: "ai", Route: "/v1/chat/completions", Kind: Latency, Latency: 3 * time.Second,
		Probability: 0.25, Expires: now.Add(time.Minute), Created: now, Source: "api"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("started fault (-want +got):\n%s", d)
	}
	l, err := c.List(t.Context())
	if err != nil || len(l.Faults) != 1 || !l.Enabled {
		t.Fatalf("List: %+v %v", l, err)
	}
	if err := c.Stop(t.Context(), "f1"); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Client{Admin: srv.URL}).List(t.Context()); !errors.Is(err, ErrAdmin) {
		t.Errorf("List without the token: %v, want ErrAdmin", err)
	}
}

func TestFaultJSONRoundTrip(t *testing.T) {
	f := Fault{ID: "f9", Integration: "crm", Kind: Latency, Latency: 1500 * time.Millisecond, Probability: 0.5,
		Expires: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Source: "config", Injections: 7}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var back Fault
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(f, back); d != "" {
		t.Errorf("JSON round trip (-want +got):\n%s\n%s", d, b)
	}
}

var decodeSeeds = []string{
	`{"integration":"payments","kind":"error","status":503,"for":"5m"}`,
	`{"integration":"sms","route":"/x","kind":"latency","latency":"250ms","probability":0.5}`,
	`{"integration":"a","kind":"oversize","size":1048576}`,
	`{"integration":"a","kind":"reset","probabilty":0.1}`,
	`{"integration":"a","kind":"latency","latency":"90d"}`,
	`{} {}`,
	`[]`,
}

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRequest(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := r.Fault.Validate(); err != nil {
			t.Fatalf("accepted an invalid fault: %v", err)
		}
		if r.TTL <= 0 || r.TTL > MaxTTL {
			t.Fatalf("accepted ttl %v", r.TTL)
		}
	})
}
