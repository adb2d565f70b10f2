// Package resilience owns how Portcullis survives a slow, sick or
// rate-limiting vendor: the outbound http.RoundTripper wrappers Retry
// (exponential backoff with full jitter, per-try timeouts, Retry-After,
// bounded by a Budget) and Breaker (a per-integration circuit breaker built on
// sony/gobreaker), the per-integration Limiter (token buckets that also obey
// the vendor's own rate-limit headers) and the concurrency Bulkhead. They
// read time from the clock.Clock their constructors take.
//
// The gateway composes them once per integration, outermost first:
// limiter and bulkhead before proxying (step 6 of the request path), then
// retry(breaker(inject(base))) as the outbound transport (step 9), and feeds
// every vendor response back through Limiter.Observe (step 10).
//
// Nothing here logs request data or credentials: errors carry integration
// names, states and durations only.
package resilience
