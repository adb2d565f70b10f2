package forward

import (
	"io"
	"strings"
	"testing"
)

// TestPrivateTargetsEverySpelling asks an open-mode integration (no
// allowlist check, no address exceptions) for the vendor's own port on
// loopback, spelled every way a parser might read as 127.0.0.1, and for
// other internal ranges. Every attempt must be refused, and the vendor,
// which really listens on 127.0.0.1, must never see a connection.
func TestPrivateTargetsEverySpelling(t *testing.T) {
	e := newEnv(t, baseConfig, nil)
	vp := e.tlsVendor.port
	before := e.tlsVendor.conns.Load()
	tests := []struct {
		name, host string
		code       string
	}{
		{"ipv4-dotted", "127.0.0.1", "egress_denied"},
		{"ipv4-other-loopback", "127.1.2.3", "egress_denied"},
		{"decimal", "2130706433", "bad_request_path"},
		{"hex", "0x7f000001", "bad_request_path"},
		{"hex-dotted", "0x7f.0x0.0x0.0x1", "bad_request_path"},
		{"hex-upper", "0X7F.1", "bad_request_path"},
		{"octal-dotted", "0177.0.0.1", "bad_request_path"},
		{"octal-whole", "017700000001", "bad_request_path"},
		{"short-two-parts", "127.1", "bad_request_path"},
		{"short-three-parts", "127.0.1", "bad_request_path"},
		{"leading-zeros", "127.000.000.001", "bad_request_path"},
		{"ipv6-loopback", "[::1]", "egress_denied"},
		{"ipv6-loopback-long", "[0:0:0:0:0:0:0:1]", "egress_denied"},
		{"ipv4-mapped", "[::ffff:127.0.0.1]", "egress_denied"},
		{"ipv4-mapped-hex", "[::ffff:7f00:1]", "egress_denied"},
		{"ipv4-mapped-long", "[0:0:0:0:0:ffff:7f00:0001]", "egress_denied"},
		{"ipv4-compatible", "[::127.0.0.1]", "egress_denied"},
		{"nat64", "[64:ff9b::127.0.0.1]", "egress_denied"},
		{"6to4", "[2002:7f00:1::]", "egress_denied"},
		{"ipv6-zone", "[fe80::1%25lo]", "bad_request_path"},
		{"unspecified", "0.0.0.0", "egress_denied"},
		{"unspecified-ipv6", "[::]", "egress_denied"},
		{"private-10", "10.0.0.1", "egress_denied"},
		{"private-192", "192.168.1.1", "egress_denied"},
		{"cgnat", "100.64.0.1", "egress_denied"},
		{"link-local", "169.254.1.1", "egress_denied"},
		{"metadata", "169.254.169.254", "egress_denied"},
		{"metadata-ipv6", "[fd00:ec2::254]", "egress_denied"},
		{"unique-local", "[fd12::1]", "egress_denied"},
		{"ipv4-in-brackets", "[127.0.0.1]", ""}, // net/http itself answers 400
		{"localhost-name", "localhost", "egress_denied"},
		{"dns-name-to-loopback", "loop.test", "egress_denied"},
		{"dns-name-to-mapped-loopback", "mapped.test", "egress_denied"},
		{"dns-name-to-nat64-loopback", "nat64.test", "egress_denied"},
		{"dns-name-to-metadata", "meta.test", "egress_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.connect(t, tt.host+":"+vp, basic("ops", e.tokens["ops"]))
			if res.resp.StatusCode == 200 {
				t.Fatalf("CONNECT %s:%s was allowed", tt.host, vp)
			}
			if res.code() != tt.code {
				t.Errorf("status %d code %q, want %q; body %s", res.resp.StatusCode, res.code(), tt.code, res.body)
			}
		})
	}
	if got := e.tlsVendor.conns.Load(); got != before {
		t.Errorf("the loopback vendor accepted %d connection(s) through the proxy", got-before)
	}
}

// TestAllowListedNamesResolvingToDeniedAddresses: a name on the enforce
// allowlist is still refused when DNS answers with an internal address.
func TestAllowListedNamesResolvingToDeniedAddresses(t *testing.T) {
	e := newEnv(t, baseConfig, nil)
	vp := e.tlsVendor.port
	tests := []struct{ name, host, reason string }{
		{"private", "internal.test", "private"},
		{"metadata", "meta.test", "metadata"},
		{"loopback-outside-allow-cidrs", "loop.test", "loopback"},
		{"ipv4-mapped-loopback", "mapped.test", "loopback"},
		{"nat64-loopback", "nat64.test", "nat64:loopback"},
		{"all-answers-denied", "mixed.test", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.connect(t, tt.host+":"+vp, basic("billing", e.tokens["billing"]))
			if res.resp.StatusCode != 403 || res.code() != "egress_denied" {
				t.Fatalf("status %d code %q; body %s", res.resp.StatusCode, res.code(), res.body)
			}
			if !strings.Contains(string(res.body), tt.reason) {
				t.Errorf("refusal does not name the address class %q: %s", tt.reason, res.body)
			}
			if strings.Contains(string(res.body), "10.0.0.7") || strings.Contains(string(res.body), "169.254.169.254") {
				t.Errorf("refusal reveals the resolved address: %s", res.body)
			}
		})
	}
	t.Run("unknown-name", func(t *testing.T) {
		res := e.connect(t, "nxdomain.test:"+vp, basic("billing", e.tokens["billing"]))
		if res.resp.StatusCode != 502 || res.code() != "upstream_unreachable" {
			t.Errorf("status %d code %q", res.resp.StatusCode, res.code())
		}
	})
}

func TestReportModeAllowsAndLogsWouldDeny(t *testing.T) {
	e := newEnv(t, baseConfig, nil)
	target := "other.test:" + e.tlsVendor.port // on no allowlist
	resp, err := e.client("support").Get("https://" + target + "/v1/report")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	line := e.waitLog(t, target)
	if line[KeyDecision] != "report" || line["integration"] != "reporting" {
		t.Errorf("decision %v integration %v, want report via reporting", line[KeyDecision], line["integration"])
	}
	if wd, _ := line[KeyWouldDeny].(string); !strings.Contains(wd, "not on the egress allowlist") {
		t.Errorf("would_deny = %q", wd)
	}
	if got := metricValue(e.metrics.WouldDeny.WithLabelValues("reporting", "support")); got != 1 {
		t.Errorf("portcullis_proxy_would_deny_total = %v, want 1", got)
	}

	t.Run("address-guard-still-enforced", func(t *testing.T) {
		res := e.connect(t, "loop.test:"+e.tlsVendor.port, basic("support", e.tokens["support"]))
		if res.resp.StatusCode != 403 || res.code() != "egress_denied" {
			t.Errorf("status %d code %q", res.resp.StatusCode, res.code())
		}
	})
	t.Run("on-allowlist-is-plain-allow", func(t *testing.T) {
		res := e.connect(t, "report.test:"+e.tlsVendor.port, basic("support", e.tokens["support"]))
		if res.resp.StatusCode != 200 {
			t.Fatalf("status %d", res.resp.StatusCode)
		}
		res.conn.Close()
		if line := e.waitLog(t, "report.test:"+e.tlsVendor.port); line[KeyDecision] != "allow" || line[KeyWouldDeny] != nil {
			t.Errorf("line %v", line)
		}
	})
}

const openConfig = `
version: 1
callers:
  ops: {tokens: ["$HASH_ops"]}
  billing: {tokens: ["$HASH_billing"]}
integrations:
  legacy:
    upstream: https://legacy.test:443
    egress: {allow: ["legacy.test:443"], allow_private: true}
    proxy: {mode: open, connect_callers: [ops]}
`

func TestOpenModeAllowsAnyTargetButNotTheGateway(t *testing.T) {
	e := newEnv(t, openConfig, nil)
	target := "vendor.test:" + e.tlsVendor.port
	resp, err := e.client("ops").Get("https://" + target + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if line := e.waitLog(t, target); line[KeyDecision] != "open" || line[KeyWouldDeny] != nil {
		t.Errorf("line %v", line)
	}

	_, selfPort, _ := strings.Cut(e.addr, ":")
	for _, host := range []string{"127.0.0.1", "self.test", "[::ffff:127.0.0.1]", "0.0.0.0"} {
		t.Run("self-"+host, func(t *testing.T) {
			res := e.connect(t, host+":"+selfPort, basic("ops", e.tokens["ops"]))
			if res.resp.StatusCode != 403 || res.code() != "egress_denied" {
				t.Fatalf("CONNECT to the gateway itself: status %d code %q", res.resp.StatusCode, res.code())
			}
		})
	}
	t.Run("callers-of-nothing-stay-out", func(t *testing.T) {
		res := e.connect(t, target, basic("billing", e.tokens["billing"]))
		if res.resp.StatusCode != 403 || res.code() != "route_not_allowed" {
			t.Errorf("status %d code %q", res.resp.StatusCode, res.code())
		}
	})
}
