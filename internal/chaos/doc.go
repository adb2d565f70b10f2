// Package chaos owns fault injection: the Injector, an http.RoundTripper the
// gateway puts innermost in each integration's outbound chain (just above
// the egress transport), the faults it holds (per integration and optionally
// per route template, each with a probability and an expiry), the admin API
// that sets them at run time (GET|POST|DELETE /api/v1/chaos) and the
// `portcullis chaos start|stop|list` command that talks to it.
//
// Fault kinds: added latency, an error status, a connection reset, a hanging
// upstream (a partition: no answer until the caller's context ends), a
// truncated, corrupted, oversized or schema-breaking body, and a revoked
// credential (the vendor answers 401). Faults are refused unless the config
// enables chaos (chaos.enabled), and every injection is logged and counted
// in portcullis_chaos_injections_total{integration,kind}.
//
// An injected answer carries the header X-Portcullis-Chaos naming the kind
// and fault id, so a person reading a response can tell a drill from a real
// vendor failure. The injector sits below the credential layer, so the
// requests it sees carry the vendor credential: it never logs or echoes
// headers, URLs or bodies, only the integration, route template, kind and
// fault id.
package chaos
