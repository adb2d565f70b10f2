package gateway

import (
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestTracing(t *testing.T) {
	tests := []struct {
		name      string
		propagate bool
	}{
		{"traceparent-stays-inside-by-default", false},
		{"traceparent-sent-when-configured", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVendor(t, nil)
			cfg := baseConfig
			if tt.propagate {
				cfg = strings.Replace(cfg, "    request_headers:", "    propagate_trace: true\n    request_headers:", 1)
			}
			sr := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
			f := newFixtureWith(t, v.URL, cfg, Options{Tracer: tp.Tracer("test")})
			const callerTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
			f.do(t, "GET", "/payments/v1/charges/ch_1?secret_query=1", f.billing, nil, map[string]string{"traceparent": callerTrace})
			got := (<-v.got).Header.Get("Traceparent")
			if tt.propagate {
				if !strings.HasPrefix(got, "00-4bf92f3577b34da6a3ce929d0e0e4736-") || got == callerTrace {
					t.Errorf("vendor traceparent = %q, want the caller's trace with the gateway's span", got)
				}
			} else if got != "" {
				t.Errorf("vendor received traceparent %q without propagate_trace", got)
			}
			spans := sr.Ended()
			if len(spans) != 1 {
				t.Fatalf("%d spans, want 1", len(spans))
			}
			s := spans[0]
			if s.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Errorf("span did not continue the caller's trace")
			}
			attrs := map[string]string{}
			for _, kv := range s.Attributes() {
				attrs[string(kv.Key)] = kv.Value.String()
			}
			if attrs["portcullis.route"] != "/v1/charges/{id}" || attrs["portcullis.caller"] != "billing" || attrs["http.response.status_code"] != "200" {
				t.Errorf("span attributes = %v", attrs)
			}
			for k, val := range attrs {
				if strings.Contains(val, "secret_query") || strings.Contains(val, f.billing) || strings.Contains(val, "ch_1") {
					t.Errorf("span attribute %s leaks request data: %q", k, val)
				}
			}
		})
	}
}
