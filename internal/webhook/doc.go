// Package webhook owns inbound vendor webhooks: the signature schemes
// (Standard Webhooks, Stripe, GitHub, Slack and a configurable HMAC-SHA256),
// the public handler served on server.webhook_listen that verifies them,
// refuses replays and persists what it accepts, the Forwarder that delivers
// accepted webhooks to internal services re-signed with the gateway's own
// Standard Webhooks secret, and the `portcullis webhook sign|verify` helpers.
//
// The order of checks on the public listener is: exact path, per-source rate
// limit, method, content type, body size, signature, timestamp, optional JSON
// schema, replay id, durable enqueue, 2xx. The signature is checked before the
// timestamp and the replay store, so an unauthenticated request learns nothing
// but "signature" and can never write to the state store.
//
// Refusals are webhook_rejected problems: 400 for a malformed request
// (detail "signature" for missing or unparsable signature headers, "body too
// large", "content type", "body", "schema"), 401 for an authentication
// failure ("signature", "timestamp", "replay"), 404 for an unknown path, 405
// for a method other than POST, 503 while the state store is unreachable.
// A source over its rate limit gets rate_limited (429), a webhook whose
// secrets cannot be read credential_unavailable (503). The precise reason is
// logged and counted, never sent.
package webhook
