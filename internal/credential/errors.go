package credential

import (
	"errors"
	"strconv"
)

// ErrUnavailable is wrapped by every error that means "no usable credential
// right now". The gateway answers credential_unavailable (503) for it.
var ErrUnavailable = errors.New("credential unavailable")

// The sentinels below all match ErrUnavailable with errors.Is, while their
// text stays short ("secret not found", not "secret not found: credential
// unavailable").
var (
	// ErrRevoked: the vendor rejected freshly refreshed material for two
	// distinct callers (see Transport), or the secret store says the secret
	// was deleted or destroyed. The last good
	// value is not served once a secret is revoked.
	ErrRevoked error = &kind{"credential revoked"}
	// ErrNotFound: the provider answered that the secret or its key does not
	// exist (an unset variable, a missing file, a KV path or key that is not
	// there). Like ErrRevoked it is a definitive answer: no stale serving.
	ErrNotFound error = &kind{"secret not found"}
	// ErrBadReference: the reference is malformed or names no known provider,
	// or the provider it names is not configured (vault: without an address).
	ErrBadReference error = &kind{"bad secret reference"}
	// ErrPermissionDenied: the secret store refused our identity (HTTP 403).
	ErrPermissionDenied error = &kind{"permission denied by secret store"}
	// ErrStale: refreshing failed for longer than the allowed staleness.
	ErrStale error = &kind{"secret too stale"}
	// ErrMalformed: the provider or token endpoint answered something that
	// could not be understood.
	ErrMalformed error = &kind{"malformed answer"}
	// ErrBadKey: a private key could not be loaded or does not suit the
	// configured algorithm.
	ErrBadKey error = &kind{"unusable private key"}
)

// kind is a sentinel that is also an ErrUnavailable.
type kind struct{ msg string }

func (k *kind) Error() string { return k.msg }
func (k *kind) Unwrap() error { return ErrUnavailable }

// RefError says which secret reference an error is about. Ref is the
// reference text (env:NAME, file:PATH, vault:MOUNT/data/PATH#KEY), which
// names a secret but never holds one.
type RefError struct {
	Ref string
	Err error
}

func (e *RefError) Error() string { return "secret " + e.Ref + ": " + e.Err.Error() }
func (e *RefError) Unwrap() error { return e.Err }

// TokenEndpointError is a refusal from an OAuth2 token endpoint. It carries
// only the status and the RFC 6749 error fields, never the response body
// (a misbehaving server may echo credentials in it).
type TokenEndpointError struct {
	URL         string
	Status      int
	Code        string // RFC 6749 §5.2 "error", e.g. invalid_client
	Description string // "error_description", truncated and scrubbed
}

func (e *TokenEndpointError) Error() string {
	s := "token endpoint " + e.URL + " answered"
	if e.Status != 0 {
		s += " " + strconv.Itoa(e.Status)
	}
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// Unwrap makes every token endpoint refusal an ErrUnavailable.
func (e *TokenEndpointError) Unwrap() error { return ErrUnavailable }

// definitive reports whether err is an answer that must not be papered over
// with a stale value.
func definitive(err error) bool {
	return errors.Is(err, ErrRevoked) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrBadReference)
}

// truncate shortens s to at most n bytes, for provider-supplied text that
// ends up in errors.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
