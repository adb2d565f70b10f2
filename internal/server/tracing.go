package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/portcullis-dev/portcullis/internal/config"
)

// newTracer builds the OTLP/HTTP exporter when tracing.otlp_endpoint is set;
// nil otherwise (the gateway then records no spans). The provider is not
// installed globally. The exporter sends through client (the internal_egress
// policy): without it otlptracehttp would build its own transport, which
// honours HTTPS_PROXY and has no address check.
func newTracer(cfg config.Tracing, client *http.Client) (trace.Tracer, func(), error) {
	if cfg.OTLPEndpoint == "" {
		return nil, func() {}, nil
	}
	if client == nil || client.Transport == nil {
		return nil, nil, fmt.Errorf("tracing.otlp_endpoint: no egress-guarded HTTP client")
	}
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(cfg.OTLPEndpoint+"/v1/traces"),
		otlptracehttp.WithHTTPClient(client))
	if err != nil {
		return nil, nil, fmt.Errorf("tracing.otlp_endpoint: %w", err)
	}
	ratio := cfg.SampleRatio
	if ratio == 0 {
		ratio = 1
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("portcullis"))),
	)
	return tp.Tracer("portcullis"), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(ctx)
	}, nil
}
