package dashboard

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

var integrationsCases = []struct {
	name  string
	in    string
	want  []string // names kept
	isErr bool
}{
	{name: "two", in: `{"integrations":[{"name":"payments","status":{"breaker":"open"}},{"name":"maps"}]}`, want: []string{"payments", "maps"}},
	{name: "empty", in: `{"integrations":[]}`, want: []string{}},
	{name: "bad-names-dropped", in: `{"integrations":[{"name":"../x"},{"name":""},{"name":"ok-1"}]}`, want: []string{"ok-1"}},
	{name: "not-json", in: `<html>`, isErr: true},
	{name: "wrong-type", in: `{"integrations":{"name":"x"}}`, isErr: true},
	{name: "times", in: `{"integrations":[{"name":"a","status":{"limiter":{"vendor_reset":"2026-07-01T00:00:00Z","vendor_remaining":-1}}}]}`, want: []string{"a"}},
}

func TestParseIntegrations(t *testing.T) {
	for _, tt := range integrationsCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseIntegrations([]byte(tt.in))
			if (err != nil) != tt.isErr {
				t.Fatalf("err = %v, want error %v", err, tt.isErr)
			}
			if err != nil {
				return
			}
			names := []string{}
			for _, in := range got {
				names = append(names, in.Name)
			}
			if d := cmp.Diff(tt.want, names); d != "" {
				t.Errorf("names (-want +got):\n%s", d)
			}
		})
	}
}

func FuzzParseIntegrations(f *testing.F) {
	for _, tt := range integrationsCases {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseIntegrations(b)
		if err != nil {
			return
		}
		for _, in := range got {
			if !validName(in.Name) {
				t.Fatalf("kept invalid name %q", in.Name)
			}
			if len(in.Upstream) > maxText+len("…") {
				t.Fatalf("upstream not clipped: %d bytes", len(in.Upstream))
			}
		}
	})
}

var chaosStartCases = []struct {
	name  string
	in    string
	want  chaosStart
	isErr bool
}{
	{name: "error-default-for", in: `{"integration":"payments","kind":"error"}`, want: chaosStart{Integration: "payments", Kind: "error", For: "5m"}},
	{name: "latency-default", in: `{"integration":"maps","kind":"latency","for":"1m"}`, want: chaosStart{Integration: "maps", Kind: "latency", For: "1m", Latency: "2s"}},
	{name: "status-only-for-error", in: `{"integration":"maps","kind":"reset","status":500}`, want: chaosStart{Integration: "maps", Kind: "reset", For: "5m"}},
	{name: "kind-not-offered", in: `{"integration":"maps","kind":"oversize"}`, isErr: true},
	{name: "unknown-field", in: `{"integration":"maps","kind":"error","probability":0.5}`, isErr: true},
	{name: "bad-integration", in: `{"integration":"a/b","kind":"error"}`, isErr: true},
	{name: "two-objects", in: `{"integration":"a","kind":"error"}{}`, isErr: true},
	{name: "empty", in: ``, isErr: true},
}

func TestParseChaosStart(t *testing.T) {
	for _, tt := range chaosStartCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseChaosStart([]byte(tt.in))
			if (err != nil) != tt.isErr {
				t.Fatalf("err = %v, want error %v", err, tt.isErr)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func FuzzParseChaosStart(f *testing.F) {
	for _, tt := range chaosStartCases {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseChaosStart(b)
		if err != nil {
			return
		}
		if !validName(got.Integration) || !slices.Contains(chaosKinds, got.Kind) || got.For == "" {
			t.Fatalf("accepted %+v", got)
		}
	})
}

func FuzzProjectAnomalies(f *testing.F) {
	f.Add([]byte(`[{"kind":"schema_drift","field":"$.a","value":"secret"}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"kind":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := projectJSON[AnomalyView](b, 50)
		if err != nil {
			return
		}
		if len(got) > 50 {
			t.Fatalf("%d items kept, limit 50", len(got))
		}
		for i := range got {
			got[i].clip()
			if len(got[i].Message) > maxText+len("…") {
				t.Fatalf("message not clipped")
			}
		}
	})
}

func FuzzClip(f *testing.F) {
	f.Add("short")
	f.Add(strings.Repeat("é", 400))
	f.Fuzz(func(t *testing.T, s string) {
		got := clip(s)
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("clip broke UTF-8: %q", got)
		}
		if len(s) <= maxText && got != s {
			t.Fatalf("clip changed a short string")
		}
	})
}
