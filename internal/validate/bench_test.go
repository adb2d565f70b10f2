package validate

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"testing"
)

// stripeBodies returns valid Stripe responses of about 1 KB (one charge),
// 20 KB and 500 KB (list pages of charges), generated from the spec.
func stripeBodies(b *testing.B) (*Spec, []benchBody) {
	v := loadVendor(b, "stripe.com.json")
	small := &gen{doc: v.raw, maxDepth: 2}
	one := small.generate(b, "/v1/charges/{charge}", "get", "200")
	full := (&gen{doc: v.raw, maxDepth: 4}).generate(b, "/v1/charges/{charge}", "get", "200")
	list := func(n int) []byte {
		var item any
		if err := json.Unmarshal(full, &item); err != nil {
			b.Fatal(err)
		}
		items := make([]any, n)
		for i := range items {
			items[i] = item
		}
		out, err := json.Marshal(map[string]any{"object": "list", "data": items, "has_more": false, "url": "/v1/charges"})
		if err != nil {
			b.Fatal(err)
		}
		return out
	}
	return v.spec, []benchBody{
		{"1KB", "/v1/charges/{id}", one},
		{"2KB", "/v1/charges/{id}", full},
		{"20KB", "/v1/charges", list(10)},
		{"500KB", "/v1/charges", list(250)},
	}
}

type benchBody struct {
	name  string
	route string
	body  []byte
}

// BenchmarkCheck is the cost of validating one response against Stripe's
// spec (OpenAPI 3.0, 2.5 MB): pre-scan, decode and schema walk.
//
//	go test -run XXX -bench BenchmarkCheck -benchmem ./internal/validate/
func BenchmarkCheck(b *testing.B) {
	spec, bodies := stripeBodies(b)
	v := New(spec, ModeEnforce, 0, 0)
	h := jsonHeader()
	for _, bb := range bodies {
		b.Run(bb.name+"-"+strconv.Itoa(len(bb.body))+"B", func(b *testing.B) {
			if viol := v.Check("GET", bb.route, 200, h, bb.body); viol != nil {
				b.Fatalf("benchmark body invalid: %s", viol.Detail())
			}
			b.SetBytes(int64(len(bb.body)))
			b.ReportAllocs()
			for b.Loop() {
				v.Check("GET", bb.route, 200, h, bb.body)
			}
		})
	}
}

// BenchmarkCheckDrift is BenchmarkCheck wired as the gateway wires a
// validator (drift detection and metrics attached, baseline learned): what
// issue 16's row 5 adds to a call, without the rest of the chain.
//
//	go test -run XXX -bench BenchmarkCheckDrift -benchmem ./internal/validate/
func BenchmarkCheckDrift(b *testing.B) {
	spec, bodies := stripeBodies(b)
	m, err := NewMetrics(nil)
	if err != nil {
		b.Fatal(err)
	}
	h := jsonHeader()
	for _, bb := range bodies[:2] {
		v := New(spec, ModeEnforce, 0, 0).With(Observers{Integration: "stripe", Metrics: m, Drift: NewDrift(spec, 100, nil)})
		b.Run(bb.name+"-"+strconv.Itoa(len(bb.body))+"B", func(b *testing.B) {
			for range 101 {
				if viol := v.Check("GET", bb.route, 200, h, bb.body); viol != nil {
					b.Fatalf("benchmark body invalid: %s", viol.Detail())
				}
			}
			b.SetBytes(int64(len(bb.body)))
			b.ReportAllocs()
			for b.Loop() {
				v.Check("GET", bb.route, 200, h, bb.body)
			}
		})
	}
}

// BenchmarkDecodeOnly is the floor: encoding/json decoding the same bodies.
func BenchmarkDecodeOnly(b *testing.B) {
	_, bodies := stripeBodies(b)
	for _, bb := range bodies {
		b.Run(bb.name, func(b *testing.B) {
			b.SetBytes(int64(len(bb.body)))
			b.ReportAllocs()
			for b.Loop() {
				var x any
				_ = json.Unmarshal(bb.body, &x)
			}
		})
	}
}

// BenchmarkProxy measures end-to-end throughput of an httputil.ReverseProxy
// in front of a vendor serving a 2 KB Stripe charge, with validation off and
// enforced in ModifyResponse the way the gateway wires it (read the body,
// Check, put the bytes back). Compare the ns/op of the two sub-benchmarks.
//
//	go test -run XXX -bench BenchmarkProxy -benchtime 3s ./internal/validate/
func BenchmarkProxy(b *testing.B) {
	spec, bodies := stripeBodies(b)
	body := bodies[1].body
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer vendor.Close()
	target, _ := url.Parse(vendor.URL)
	for _, mode := range []Mode{ModeOff, ModeEnforce} {
		b.Run(string(mode), func(b *testing.B) {
			v := New(spec, mode, 0, 0)
			proxy := &httputil.ReverseProxy{
				Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
				ModifyResponse: func(resp *http.Response) error {
					if v.Mode() == ModeOff {
						return nil
					}
					data, err := io.ReadAll(io.LimitReader(resp.Body, DefaultMaxBytes+1))
					_ = resp.Body.Close()
					if err != nil {
						return err
					}
					if viol := v.Check(http.MethodGet, "/v1/charges/{id}", resp.StatusCode, resp.Header, data); viol != nil && v.Enforcing() {
						return viol.Problem()
					}
					resp.Body = io.NopCloser(bytes.NewReader(data))
					return nil
				},
			}
			front := httptest.NewServer(proxy)
			defer front.Close()
			client := front.Client()
			client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
			b.SetBytes(int64(len(body)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(front.URL + "/v1/charges/ch_1")
					if err != nil {
						b.Error(err)
						return
					}
					n, _ := io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusOK || n != int64(len(body)) {
						b.Errorf("status %d, %d bytes", resp.StatusCode, n)
						return
					}
				}
			})
		})
	}
}

// BenchmarkDrift is the cost drift detection adds per response, on top of
// Check (the decoded body is shared).
func BenchmarkDrift(b *testing.B) {
	spec, bodies := stripeBodies(b)
	d := NewDrift(spec, 10, nil)
	for _, bb := range bodies[:3] {
		var v any
		if err := json.Unmarshal(bb.body, &v); err != nil {
			b.Fatal(err)
		}
		b.Run(bb.name, func(b *testing.B) {
			b.SetBytes(int64(len(bb.body)))
			b.ReportAllocs()
			for b.Loop() {
				d.ObserveValue("GET", bb.route, 200, v)
			}
		})
	}
}

// BenchmarkScan is the pre-scan alone (UTF-8, depth, duplicate keys).
func BenchmarkScan(b *testing.B) {
	_, bodies := stripeBodies(b)
	var sp scannerPool
	for _, bb := range bodies {
		b.Run(bb.name, func(b *testing.B) {
			b.SetBytes(int64(len(bb.body)))
			b.ReportAllocs()
			for b.Loop() {
				sp.scan(bb.body, DefaultMaxDepth)
			}
		})
	}
}
