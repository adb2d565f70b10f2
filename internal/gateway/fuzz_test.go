package gateway

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzRequestTarget sends hostile request targets straight to the handler:
// it must never panic or answer 500, and whatever reaches the vendor must
// be a path the policy allowed.
func FuzzRequestTarget(f *testing.F) {
	for _, s := range []string{
		"/payments/v1/charges/1", "/payments/v1/charges/%2e%2e", "/payments/v1//charges", "/payments/../x",
		"/payments/v1/charges/1%00", "/payments/v1/charges/%252e", "/payments/v1/charges/1?x=%zz", "/",
		"/payments", "//payments/v1/charges/1", "/payments/v1/charges/\u2025", "*",
	} {
		f.Add("GET", s)
	}
	v := newVendor(&testing.T{}, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.EscapedPath() != "/v1/charges/ok" && !strings.HasPrefix(r.URL.EscapedPath(), "/v1/charges/") {
			panic("vendor reached outside the allowed routes: " + r.URL.EscapedPath())
		}
		w.WriteHeader(200)
	})
	fx := newFixture(&testing.T{}, v.URL, baseConfig)
	f.Fuzz(func(t *testing.T, method, target string) {
		if !validMethod(method) {
			return
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.Method = method
		r.RequestURI = target
		if u, err := url.ParseRequestURI(target); err == nil {
			r.URL = u
		}
		r.Header.Set("Authorization", "Bearer "+fx.billing)
		rec := httptest.NewRecorder()
		fx.gw.ServeHTTP(rec, r)
		if rec.Code >= 500 && rec.Code != 502 && rec.Code != 503 && rec.Code != 504 {
			t.Fatalf("%s %q → %d %s", method, target, rec.Code, rec.Body)
		}
	})
}

func validMethod(m string) bool {
	if m == "" || len(m) > 16 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if m[i] < 'A' || m[i] > 'Z' {
			return false
		}
	}
	return true
}
