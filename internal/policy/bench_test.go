package policy_test

import (
	"testing"

	"github.com/portcullis-dev/portcullis/internal/policy"
)

// benchRoutes is a 30-route table shaped like a payments vendor's API.
func benchRoutes() []policy.Route {
	b := []string{"billing"}
	s := []string{"billing", "support"}
	return []policy.Route{
		{Method: "POST", Path: "/v1/charges", Callers: b},
		{Method: "GET", Path: "/v1/charges", Callers: s},
		{Method: "GET", Path: "/v1/charges/search", Callers: s},
		{Method: "GET", Path: "/v1/charges/{id}", Callers: s},
		{Method: "POST", Path: "/v1/charges/{id}", Callers: b},
		{Method: "POST", Path: "/v1/charges/{id}/capture", Callers: b},
		{Method: "POST", Path: "/v1/charges/{id}/refunds", Callers: b},
		{Method: "GET", Path: "/v1/charges/{id}/refunds/{refund}", Callers: s},
		{Method: "POST", Path: "/v1/customers", Callers: b},
		{Method: "GET", Path: "/v1/customers", Callers: s},
		{Method: "GET", Path: "/v1/customers/search", Callers: s},
		{Method: "GET", Path: "/v1/customers/{id}", Callers: s},
		{Method: "POST", Path: "/v1/customers/{id}", Callers: b},
		{Method: "DELETE", Path: "/v1/customers/{id}", Callers: b},
		{Method: "GET", Path: "/v1/customers/{id}/sources", Callers: s},
		{Method: "POST", Path: "/v1/customers/{id}/sources", Callers: b},
		{Method: "DELETE", Path: "/v1/customers/{id}/sources/{source}", Callers: b},
		{Method: "GET", Path: "/v1/invoices", Callers: s},
		{Method: "GET", Path: "/v1/invoices/upcoming", Callers: s},
		{Method: "GET", Path: "/v1/invoices/{id}", Callers: s},
		{Method: "POST", Path: "/v1/invoices/{id}/pay", Callers: b},
		{Method: "POST", Path: "/v1/invoices/{id}/void", Callers: b},
		{Method: "GET", Path: "/v1/invoices/{id}/lines", Callers: s},
		{Method: "POST", Path: "/v1/payouts", Callers: []string{"treasury"}},
		{Method: "GET", Path: "/v1/payouts/{id}", Callers: []string{"treasury"}},
		{Method: "GET", Path: "/v1/balance", Callers: s},
		{Method: "GET", Path: "/v1/balance/history", Callers: s},
		{Method: "GET", Path: "/v1/events", Callers: s},
		{Method: "GET", Path: "/v1/events/{id}", Callers: s},
		{Method: "HEAD", Path: "/v1/charges/{id}", Callers: s},
	}
}

func BenchmarkCheckPathDecide(b *testing.B) {
	table := mustCompile(b, benchRoutes())
	cases := []struct {
		name, method, path, caller string
		allowed                    bool
	}{
		{"allowed-static", "GET", "/v1/balance/history", "support", true},
		{"allowed-param", "GET", "/v1/charges/ch_3MmlLrLkdIwHu7ix0snN0B15/refunds/re_1Nisp2", "support", true},
		{"allowed-escaped-param", "GET", "/v1/customers/cus%20123", "support", true},
		{"denied-caller", "POST", "/v1/payouts", "billing", false},
		{"denied-no-route", "GET", "/v1/admin/keys", "billing", false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]string, 0, policy.MaxSegments)
			for b.Loop() {
				segs, err := policy.AppendCheckPath(buf[:0], c.path)
				if err != nil {
					b.Fatal(err)
				}
				if d := table.Decide(policy.Args{Method: c.method, Segments: segs, Caller: c.caller}); d.Allowed != c.allowed {
					b.Fatalf("Decide = %+v", d)
				}
			}
		})
	}
	b.Run("allowed-param-CheckPath", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			segs, err := policy.CheckPath("/v1/charges/ch_1/refunds/re_1")
			if err != nil {
				b.Fatal(err)
			}
			if d := table.Decide(policy.Args{Method: "GET", Segments: segs, Caller: "support"}); !d.Allowed {
				b.Fatalf("Decide = %+v", d)
			}
		}
	})
}
