// Package audit owns `portcullis audit`: a periodic review of a config
// together with the usage records the gateway keeps (store.UsageRecord:
// who called which route, when, with which credential version and scopes).
// It reports credentials past their max_age or unused, callers and route
// grants unused for N days (with the narrower config to write instead),
// OAuth scopes never seen in use, vendor governance gaps (certifications,
// penetration tests, policies, contract terms, reviews, owner) and SLA
// compliance per month measured from the gateway's own records — as a
// table, JSON or Markdown, with an exit status for CI.
//
// What the offline audit can know about a credential's age: the
// modification time of a file: secret, and the first time the gateway
// recorded the credential version now in use (a lower bound of its age).
// It cannot read the creation time of env: or vault: secrets — that needs
// the secret store; a running gateway shows it as credential status on
// GET /api/v1/integrations.
//
// The supply-chain audit of SDK manifests (`portcullis audit sdks`) lives
// in the sdk subpackage.
package audit
