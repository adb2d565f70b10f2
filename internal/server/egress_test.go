package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/config"
)

// Issue 13 item 8: the OTLP exporter and the Vault address go through
// internal_egress.

func counting(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
	t.Cleanup(srv.Close)
	return srv, &n
}

func parse(t *testing.T, yml string) *config.Config {
	t.Helper()
	cfg, _, err := config.Parse("t.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// exportOneSpan records a span and flushes it through the exporter.
func exportOneSpan(t *testing.T, endpoint string, allow ...string) {
	t.Helper()
	yml := "version: 1\ntracing: {otlp_endpoint: \"" + endpoint + "\"}\ninternal_egress: {allow: [\"" + strings.Join(allow, `", "`) + "\"]}\n"
	cfg := parse(t, yml)
	p, err := internalPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr, stop, err := newTracer(cfg.Tracing, p.Client(otlpClientTimeout))
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.Start(context.Background(), "egress-test")
	span.End()
	stop() // flushes the batch
}

func TestOTLPExporterEgress(t *testing.T) {
	t.Run("allow-listed-collector-gets-spans", func(t *testing.T) {
		collector, hits := counting(t)
		exportOneSpan(t, collector.URL, strings.TrimPrefix(collector.URL, "http://"))
		if hits.Load() == 0 {
			t.Error("the allow-listed collector received no export")
		}
	})

	t.Run("environment-proxy-is-ignored", func(t *testing.T) {
		proxy, proxied := counting(t)
		t.Setenv("HTTP_PROXY", proxy.URL)
		t.Setenv("HTTPS_PROXY", proxy.URL)
		exportOneSpan(t, "http://otel.portcullis.invalid:4318", "otel.portcullis.invalid:4318")
		if n := proxied.Load(); n != 0 {
			t.Errorf("the environment's proxy received %d OTLP exports, want 0", n)
		}
	})

	t.Run("no-client-is-an-error", func(t *testing.T) {
		if _, _, err := newTracer(config.Tracing{OTLPEndpoint: "http://127.0.0.1:4318"}, nil); err == nil {
			t.Error("newTracer without a client: no error")
		}
	})
}

func TestVaultAddrMustBeOnInternalEgress(t *testing.T) {
	const withVault = "version: 1\nserver: {admin_token: \"vault:secret/data/portcullis#admin\"}\n"
	tests := []struct {
		name, yml, addr, want string
	}{
		{"listed", withVault + "internal_egress: {allow: [\"vault.corp.example:8200\"]}\n", "https://vault.corp.example:8200", ""},
		{"not-listed", withVault + "internal_egress:\n  allow: [\"otel:4318\"]\n", "http://127.0.0.1:8200",
			`127.0.0.1:8200, is not on internal_egress.allow (line 4): add "127.0.0.1:8200" to internal_egress.allow`},
		{"no-internal-egress", withVault, "https://vault.corp.example",
			"add `internal_egress: {allow: [\"vault.corp.example:443\"]}`"},
		{"no-vault-reference", "version: 1\n", "http://127.0.0.1:8200", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parse(t, tt.yml)
			p, err := internalPolicy(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = checkVaultEgress(cfg, p, tt.addr)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("err = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
