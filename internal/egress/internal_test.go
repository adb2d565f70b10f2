package egress

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestInternalPolicy(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	dns := newFakeDNS(t, map[string][]netip.Addr{
		"hooks.corp.example":    {netip.MustParseAddr("127.0.0.1")},
		"metadata.corp.example": {netip.MustParseAddr("169.254.169.254")},
		"aws6.corp.example":     {netip.MustParseAddr("fd00:ec2::254")},
	})
	p, err := NewInternalPolicy([]string{"hooks.corp.example:" + port, "metadata.corp.example:" + port, "aws6.corp.example:" + port}, dns.resolver())
	if err != nil {
		t.Fatal(err)
	}
	get := func(host string) error {
		resp, err := p.Client(5 * time.Second).Get("http://" + net.JoinHostPort(host, port) + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get("hooks.corp.example"); err != nil || hits.Load() != 1 {
		t.Errorf("listed internal host on loopback: err %v, hits %d; want it reached", err, hits.Load())
	}
	for _, tt := range []struct{ host, reason string }{
		{"metadata.corp.example", ClassMetadata},
		{"aws6.corp.example", ClassMetadata},
		{"127.0.0.1", ReasonNotAllowlisted}, // the same address, not listed by this name
	} {
		err := get(tt.host)
		var de *DeniedError
		if !errors.As(err, &de) || de.Reason != tt.reason {
			t.Errorf("%s: err = %v, want a %s denial", tt.host, err, tt.reason)
		}
	}
	if hits.Load() != 1 {
		t.Errorf("the server got %d requests, want 1", hits.Load())
	}
}

func TestInternalPolicyRefusesBadEntries(t *testing.T) {
	for _, entry := range []string{"*.corp.example:443", "169.254.169.254:80", "[fd00:ec2::254]:80", "vault.corp.example"} {
		if _, err := NewInternalPolicy([]string{entry}, nil); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig", entry, err)
		}
	}
}

func TestClientFollowsNoRedirect(t *testing.T) {
	var targetHits atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { targetHits.Add(1) }))
	t.Cleanup(target.Close)
	redirector := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusFound))
	t.Cleanup(redirector.Close)
	p, err := NewInternalPolicy([]string{strings.TrimPrefix(redirector.URL, "http://"), strings.TrimPrefix(target.URL, "http://")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.Client(5 * time.Second).Get(redirector.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || targetHits.Load() != 0 {
		t.Errorf("status %d, target hits %d; want the 302 itself and no request to the target", resp.StatusCode, targetHits.Load())
	}
}

func TestTransportsIgnoreProxyEnvironment(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://proxy.example:3128")
	t.Setenv("HTTPS_PROXY", "http://proxy.example:3128")
	req, _ := http.NewRequest(http.MethodGet, "https://api.vendor.example/", nil)
	p := mustPolicy(t, Config{Allow: []string{"api.vendor.example:443"}})
	for name, tr := range map[string]*http.Transport{"policy": p.Transport(), "client": p.Client(time.Second).Transport.(*http.Transport), "cli": CLITransport()} {
		if tr.Proxy != nil {
			if u, _ := tr.Proxy(req); u != nil {
				t.Errorf("%s transport sends through the environment's proxy %s", name, u)
			}
		}
	}
}
