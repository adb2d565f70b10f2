package credential

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

// TestRotationUnderLoad measures a secret rotation in the KV store while
// concurrent callers go through the inject Transport to a vendor that, like
// real vendors with rolling keys, accepts the old and the new key during an
// overlap window and then only the new one. The hard-cutover case has no
// overlap at all: there the 401 rule (refresh once, retry once) carries the
// requests across. The KV store is the real Vault of vaultserver_test.go.
// Run with -v to see the numbers:
//
//	go test -race -run TestRotationUnderLoad -v ./internal/credential/
func TestRotationUnderLoad(t *testing.T) {
	tests := []struct {
		name    string
		overlap time.Duration
	}{
		{name: "rolling-keys-with-overlap", overlap: 1500 * time.Millisecond},
		{name: "hard-cutover-no-overlap", overlap: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const (
				callers  = 16
				runFor   = 3 * time.Second
				rotateAt = time.Second
				oldKey   = "vendor-key-v1-abcdef"
				newKey   = "vendor-key-v2-abcdef"
			)
			kv := vaultServer(t)
			proxy := newVaultProxy(t, kv) // counts the KV reads
			put := func(v string) conf.SecretRef {
				return kv.put(t, "vendors/load", map[string]any{"api_key": v}, "api_key")
			}
			ref := put(oldKey)

			o, _ := testOptions(nil)
			o.Vault = VaultOptions{Addr: proxy.URL, Token: secret.New(kv.token)}
			r := NewResolver(o)
			defer r.Close()
			c := &Spec{Type: "bearer", Secret: ref,
				TTL: conf.Dur(time.Second), MaxStale: conf.Dur(time.Minute)}
			in, err := NewInjector("load", c, r, o)
			if err != nil {
				t.Fatal(err)
			}
			vendor := newFakeVendor(t, oldKey)
			base := http.DefaultTransport.(*http.Transport).Clone()
			base.MaxIdleConnsPerHost = callers
			client := &http.Client{Timeout: 5 * time.Second, Transport: &Transport{Base: base, Injector: in, Integration: "load"}}

			var sent, failed atomic.Int64
			ctx, cancel := context.WithTimeout(context.Background(), runFor)
			defer cancel()
			var wg sync.WaitGroup
			for range callers {
				wg.Go(func() {
					for ctx.Err() == nil {
						req, _ := http.NewRequest(http.MethodPost, vendor.srv.URL+"/v1/charges", strings.NewReader(`{"amount":1}`))
						resp, err := client.Do(req)
						sent.Add(1)
						if err != nil || resp.StatusCode != http.StatusOK {
							failed.Add(1)
						}
						if err == nil {
							resp.Body.Close()
						}
					}
				})
			}
			time.Sleep(rotateAt)
			put(newKey)
			if tt.overlap > 0 {
				vendor.accept(oldKey, newKey)
				time.Sleep(tt.overlap)
			}
			vendor.accept(newKey)
			wg.Wait()

			t.Logf("%s: callers=%d duration=%s ttl=1s sent=%d failed=%d vendor_calls=%d kv_reads=%d final_version=%s",
				tt.name, callers, runFor, sent.Load(), failed.Load(), vendor.calls.Load(), proxy.reads.Load(), in.Status().Version)
			if failed.Load() != 0 {
				t.Errorf("%d of %d caller requests failed during the rotation, want 0", failed.Load(), sent.Load())
			}
			if v := in.Status().Version; v != "2" {
				t.Errorf("version after the run = %s, want 2", v)
			}
			if extra := vendor.calls.Load() - sent.Load(); extra > sent.Load()/2 {
				t.Errorf("%d extra vendor calls for %d requests: retry storm", extra, sent.Load())
			}
		})
	}
}
