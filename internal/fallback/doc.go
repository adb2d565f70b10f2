// Package fallback owns what Portcullis answers when a vendor cannot: the
// stale cache (the last good response to the same GET, served for a
// bounded time), the durable async queue (calls accepted with 202 and a job
// id under `Prefer: respond-async`, delivered later by a Worker with
// retries and an Idempotency-Key, their results readable at /jobs/{id} by
// the caller that created them only), and the kill switch (an operator's
// per-integration off switch, persisted in the state store and shared by
// every replica within a second).
//
// Every answer served by a fallback carries X-Portcullis-Fallback. Stored
// calls never hold the caller's credentials: the vendor credential is
// injected by the gateway's outbound chain at delivery time.
package fallback

// HeaderFallback names the fallback that produced an answer: "stale" or "queued".
const HeaderFallback = "X-Portcullis-Fallback"
