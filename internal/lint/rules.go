package lint

import (
	"fmt"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

// sarifLevel is the SARIF result level of a severity.
func sarifLevel(s conf.Severity) string {
	switch s {
	case conf.Error:
		return "error"
	case conf.Warning:
		return "warning"
	}
	return "note"
}

// Rule describes one kind of finding.
type Rule struct {
	ID       conf.Code
	Name     string // kebab-case, for SARIF
	Severity conf.Severity
	Title    string
	// Fix is the general remedy; a finding may give a more precise one.
	Fix string
}

// Rules returns the rule catalogue in id order.
func Rules() []Rule {
	return []Rule{
		{conf.ConfigInvalid, "config-invalid", conf.Error, "The config does not validate or compile",
			"Correct the value as the message says; `portcullis serve` refuses this config."},
		{conf.PlainSecret, "plain-text-secret", conf.Error, "A secret is written into the config file",
			"Move the value into a secret store and reference it (env:NAME, file:PATH or vault:MOUNT/data/PATH#KEY), then rotate it: it has been in the file and its history."},
		{conf.WildcardEgress, "wildcard-egress", conf.Warning, "Egress allows every subdomain of a host",
			"List the vendor's hosts one by one, e.g. api.vendor.example:443."},
		{conf.IPEgress, "ip-egress", conf.Warning, "Egress or upstream names an IP address",
			"Use the vendor's DNS name so TLS verifies the name its certificate is issued for; if the vendor only has an address, pin its key with egress.pin_spki."},
		{conf.PrivateEgress, "private-egress", conf.Warning, "Egress may reach private, loopback or metadata addresses",
			"Remove allow_private; if an internal vendor needs it, re-allow only its range with egress.allow_cidrs."},
		{conf.PlainHTTP, "plain-http", conf.Warning, "A vendor URL uses plain http",
			"Use https://; keep plain http for loopback test vendors only."},
		{conf.NoTimeouts, "no-timeouts", conf.Warning, "Integration has no timeouts of its own",
			"Set timeouts: {connect: 2s, request: 10s}, sized to the vendor's p99 latency."},
		{conf.NoBreaker, "no-circuit-breaker", conf.Warning, "Integration has no circuit breaker",
			"Add circuit_breaker: {failure_ratio: 0.5, min_requests: 20, window: 30s, open_for: 15s}."},
		{conf.NoRateLimit, "no-rate-limit", conf.Warning, "Integration has no rate limit",
			"Add rate_limit: {rate: N/s, burst: N}, below the vendor's own limit."},
		{conf.NoValidation, "no-response-validation", conf.Info, "Vendor responses are not validated",
			"Add validate: {openapi: specs/VENDOR.yaml, mode: report}, then switch to mode: enforce once the reports are clean."},
		{conf.OpenRoute, "route-open-to-every-caller", conf.Warning, "A route is open to every caller",
			"List only the callers that need this route."},
		{conf.UnjustifiedWrite, "sensitive-write-without-justification", conf.Warning, "Callers may write to a vendor holding pii or payment data, with no justification",
			"Add justification: \"<why these callers may write here>\" to the integration, or narrow the route's callers."},
		{conf.SharedIdentity, "shared-caller-identity", conf.Error, "Two callers share a token or certificate subject",
			"Give each caller its own token (`portcullis token new --caller NAME`) and its own certificate subject."},
		{conf.NoMaxAge, "credential-without-max-age", conf.Warning, "Credential has no rotation policy",
			"Add max_age: 90d (or the vendor's rotation period) to the credential; `portcullis audit` flags it when it is due."},
		{conf.NoCredential, "no-credential", conf.Warning, "Integration sends calls without a credential",
			"Add a credential block, unless the vendor API is truly public."},
		{conf.NoAdminToken, "no-admin-token", conf.Warning, "The admin API has no token",
			"Set server.admin_token: env:PORTCULLIS_ADMIN_TOKEN."},
		{conf.NoScopes, "oauth-without-scopes", conf.Warning, "OAuth2 credential requests no scopes",
			"List only the scopes the integration needs in credential.scopes."},
		{conf.AdminExposed, "admin-not-on-loopback", conf.Warning, "The admin API listens beyond loopback",
			"Bind server.admin_listen to 127.0.0.1 (or a private interface behind a firewall)."},
		{conf.ChaosEnabled, "chaos-enabled", conf.Warning, "Fault injection is enabled",
			"Keep chaos.enabled: true out of production configs."},
		{conf.BadChaosFault, "bad-chaos-fault", conf.Error, "A configured chaos fault cannot be loaded",
			"Correct the fault as the message says."},
		{conf.CallerUnreachable, "caller-cannot-authenticate", conf.Warning, "A caller can never authenticate",
			"Give the caller a token hash or an mTLS subject, or remove it."},
		{conf.OpenProxyCIDRs, "open-proxy-to-internal-range", conf.Warning, "A report or open forward proxy reaches every port of an allowed internal range",
			"Set proxy.mode: enforce and list the vendor's host:port in egress.allow, or remove allow_cidrs from this integration."},
		{conf.TokenURLOffEgress, "token-url-not-on-egress", conf.Error, "An OAuth2/JWT token_url is not on its integration's egress allowlist",
			"Add the token endpoint's host:port to the integration's egress.allow: token requests go through the same egress guard as vendor calls."},
		{conf.InternalNotAllowed, "internal-target-not-allowlisted", conf.Error, "An alert sink, webhook forward_to or OTLP endpoint is not on internal_egress.allow",
			"Add the target's host:port to internal_egress.allow; the gateway opens no connection of its own to a host that is not listed there."},
		{conf.InternalEgressEntry, "bad-internal-egress-entry", conf.Error, "An internal_egress.allow entry is malformed or could never be reached",
			"Write each entry as host:port (IPv6 in brackets), without wildcards, and not a cloud metadata address."},
		{conf.ListenerUnbounded, "listener-unbounded", conf.Warning, "A listener bound in server.limits is turned off",
			"Remove the 0s (the listener's default applies) or set a duration; see docs/listeners.md."},
		{conf.PerReplicaLimit, "rate-limit-per-replica", conf.Warning, "A rate limit is kept per replica while several replicas share Redis",
			"Add global: true to the rate_limit, so that every replica spends from one budget kept in Redis; if the limit is meant per replica, divide it by the number of replicas."},
		{conf.QueueWithoutRoutes, "queue-without-queued-routes", conf.Warning, "fallback.queue is on but no route may be queued",
			"Mark the routes whose calls may be queued with queue: true, e.g. {method: POST, path: /v1/charges, callers: [billing], queue: true}; or remove fallback.queue."},
		{conf.QueueRouteWithoutFallback, "queued-route-without-queue-fallback", conf.Warning, "A route is marked queue: true but its integration has no fallback.queue",
			"Add fallback: {queue: true} to the integration; or remove queue: true from the route."},
		{conf.InspectCAExpiring, "inspect-ca-expiring", conf.Warning, "The inspect CA expires soon",
			"Make the next CA now (`portcullis ca new`), have clients trust both, then point server.inspect_ca at the new one (docs/forward-proxy.md, Rotating)."},
	}
}

func ruleByID(id conf.Code) Rule {
	for _, r := range Rules() {
		if r.ID == id {
			return r
		}
	}
	panic(fmt.Sprintf("lint: unknown rule %s", id))
}
