package gateway

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/portcullis-dev/portcullis/internal/observe"
)

// traceContext is the W3C trace-context propagator. The gateway never uses
// the global propagator or tracer provider.
var traceContext = propagation.TraceContext{}

func (o *Options) tracer() trace.Tracer {
	if o.Tracer != nil {
		return o.Tracer
	}
	return noop.NewTracerProvider().Tracer("portcullis")
}

// startSpan starts the request's server span, continuing the caller's
// trace when it sent a traceparent.
// Without a tracer and without a caller traceparent there is nothing to
// continue or record: the request's own context is returned, with the
// no-op span it already carries.
func (g *Gateway) startSpan(r *http.Request) (context.Context, trace.Span) {
	if g.opts.Tracer == nil {
		if _, ok := r.Header["Traceparent"]; !ok {
			return r.Context(), trace.SpanFromContext(r.Context())
		}
	}
	ctx := traceContext.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	return g.tracer.Start(ctx, "portcullis.request", serverSpan)
}

var serverSpan = trace.WithSpanKind(trace.SpanKindServer)

// endSpan records only structural attributes: never the raw path, query,
// headers or bodies.
func endSpan(span trace.Span, rec *observe.Record) {
	if !span.IsRecording() {
		span.End()
		return
	}
	span.SetAttributes(
		attribute.String("portcullis.integration", rec.Integration),
		attribute.String("portcullis.route", rec.Route),
		attribute.String("portcullis.caller", rec.Caller),
		attribute.String("http.request.method", rec.Method),
		attribute.Int("http.response.status_code", rec.Status),
		attribute.Int("portcullis.upstream_status", rec.UpstreamStatus),
		attribute.Int("portcullis.attempts", rec.Attempts),
		attribute.String("portcullis.request_id", rec.RequestID),
	)
	if rec.ErrorCode != "" {
		span.SetAttributes(attribute.String("portcullis.error_code", rec.ErrorCode))
		span.SetStatus(codes.Error, rec.ErrorCode)
	}
	if rec.Fallback != "" {
		span.SetAttributes(attribute.String("portcullis.fallback", rec.Fallback))
	}
	span.End()
}

// injectTrace sets traceparent on the outbound headers when the integration
// propagates traces to its vendor.
func injectTrace(ctx context.Context, h http.Header) {
	traceContext.Inject(ctx, propagation.HeaderCarrier(h))
}
