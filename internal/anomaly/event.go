// Package anomaly owns Portcullis's behavioural alerts: the Event every
// detector raises, the rolling per-integration baselines that notice when a
// vendor starts behaving differently ([Detector]), and the [Hub] that
// de-duplicates, rate-limits and delivers events to the configured sinks
// (log, webhook with an optional Slack-compatible payload), keeps the recent
// ones for GET /api/v1/anomalies and counts them in Prometheus.
//
// Events describe behaviour, never data: they carry route templates, caller
// names, JSON paths, rates and sizes, and never a secret, a header value or a
// value from a request or response body.
package anomaly

import (
	"strings"
	"time"
)

// Kind names what an event is about; it is the `kind` label of
// portcullis_anomaly_events_total.
type Kind string

// The kinds Portcullis raises. Other packages may raise others.
const (
	KindSchemaDrift          Kind = "schema_drift"
	KindValidationFailed     Kind = "validation_failed"
	KindSizeAnomaly          Kind = "size_anomaly"
	KindLatencyAnomaly       Kind = "latency_anomaly"
	KindErrorRate            Kind = "error_rate"
	KindCallerVolume         Kind = "caller_volume"
	KindWebhookBadSignatures Kind = "webhook_bad_signatures"
	KindCredentialRevoked    Kind = "credential_revoked"
)

// Event is one alert.
type Event struct {
	Kind        Kind      `json:"kind"`
	Integration string    `json:"integration,omitempty"`
	Route       string    `json:"route,omitempty"` // "METHOD template"
	Caller      string    `json:"caller,omitempty"`
	Message     string    `json:"message"`
	Time        time.Time `json:"time"`
	// Key de-duplicates: the hub drops an event whose key it delivered within
	// its de-duplication window. Empty means kind|integration|route|caller.
	Key string `json:"key"`
}

// DedupeKey is Key, or the default key when Key is empty.
func (e Event) DedupeKey() string {
	if e.Key != "" {
		return e.Key
	}
	return strings.Join([]string{string(e.Kind), e.Integration, e.Route, e.Caller}, "|")
}

// Sink receives events; *Hub is one.
type Sink interface {
	Emit(Event)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Event)

// Emit calls f(e).
func (f SinkFunc) Emit(e Event) { f(e) }
