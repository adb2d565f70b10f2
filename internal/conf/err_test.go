package conf

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReportErrAndPaths(t *testing.T) {
	r := NewReport("webhooks.a")
	if r.Err() != nil {
		t.Fatal("Err of an empty report is not nil")
	}
	r.Warnf("", "risky")
	if r.Err() != nil {
		t.Fatal("Err counts warnings")
	}
	r.Errorf("path", "must start with /")
	r.At("secrets").Errorf("[0]", "bad")
	if d := cmp.Diff([]string{"warning webhooks.a", "error webhooks.a.path", "error webhooks.a.secrets[0]"}, r.Paths()); d != "" {
		t.Errorf("Paths (-want +got):\n%s", d)
	}
	if got, want := r.Err().Error(), "webhooks.a.path: must start with /\nwebhooks.a.secrets[0]: bad"; got != want {
		t.Errorf("Err = %q, want %q", got, want)
	}
}

func TestHTTPURL(t *testing.T) {
	tests := []struct {
		name, raw string
		want      []string
		ok        bool
	}{
		{"https", "https://api.example/v1", nil, true},
		{"empty", "", []string{"error u"}, false},
		{"not-http", "ftp://files.example/", []string{"error u"}, false},
		{"relative", "/v1", []string{"error u"}, false},
		{"userinfo", "https://me:pw@api.example/", []string{"error u"}, false},
		{"query", "https://hooks.example/x?token=secret", []string{"error u"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReport("")
			u := HTTPURL(r, "u", tt.raw)
			if d := cmp.Diff(tt.want, r.Paths()); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
			if (u != nil) != tt.ok {
				t.Errorf("URL = %v, want ok=%v", u, tt.ok)
			}
			for _, p := range r.Problems() {
				if u, err := url.Parse(tt.raw); err == nil && u.RawQuery != "" && strings.Contains(p.Msg, u.RawQuery) {
					t.Errorf("message quotes the URL's query: %q", p.Msg)
				}
			}
		})
	}
}
