// Package drill owns `portcullis drill`: named scenarios run against a
// running gateway and its admin API that inject a vendor failure through
// the chaos API, call the gateway as a caller would, and report whether
// each protection engaged — breaker opened and closed, fallback served,
// invalid body blocked, credential refresh attempted, alert emitted,
// caller latency bounded — as a pass/fail table.
//
// A drill only uses the gateway's HTTP surfaces: response headers
// (X-Portcullis-Error, X-Portcullis-Fallback), GET /api/v1/integrations
// (status.breaker, and status.credential when present), /metrics and
// /api/v1/chaos. Fields it does not know are ignored, and a protection it
// cannot observe is reported as such instead of failing.
package drill
