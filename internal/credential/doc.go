// Package credential owns the vendor credentials of the gateway: where secret
// material comes from (the env:, file: and vault: providers behind one
// Resolver, with a TTL cache, background refresh and bounded staleness), how
// it is put on an outbound request (the Injector types bearer, header, basic,
// query, oauth2_client_credentials and jwt_bearer) and what happens when a
// vendor rejects it (Transport: refresh once, retry once, then mark revoked).
//
// Secrets travel as secret.Value and are registered with the Scrubber as soon
// as they are resolved. Errors, log records and Status name references
// ("vault:secret/data/payments#api_key"), versions and times, never values.
//
// Every failure to produce a credential wraps ErrUnavailable, so the gateway
// needs one errors.Is check to answer credential_unavailable (503).
//
// The query credential type puts the secret in the outbound URL. The
// Transport hands the base RoundTripper a clone of the caller's request and
// puts the caller's request back on the response, so the URL with the secret
// never leaves this package through the response; the gateway must still log
// the route template only, never an outbound URL.
package credential
