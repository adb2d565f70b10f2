// Package problem owns the gateway's error type and its RFC 9457
// application/problem+json rendering. Every refusal the gateway makes
// (as opposed to an answer the vendor gave) goes through Write, so a caller
// can always tell the two apart by the X-Portcullis-Error header.
//
// An *Error separates what the client may see (Code, Detail) from what is
// only logged (the wrapped cause). Clients never see err.Error() of a cause.
package problem

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// Code is a stable, documented error code (DESIGN.md "Gateway-originated errors").
type Code string

// The error codes of DESIGN.md. Adding one is a contract change.
const (
	BadRequestPath          Code = "bad_request_path"
	Unauthenticated         Code = "unauthenticated"
	RouteNotAllowed         Code = "route_not_allowed"
	UnknownIntegration      Code = "unknown_integration"
	RequestTooLarge         Code = "request_too_large"
	RateLimited             Code = "rate_limited"
	UpstreamTimeout         Code = "upstream_timeout"
	ResponseTooLarge        Code = "response_too_large"
	IntegrationDisabled     Code = "integration_disabled"
	CircuitOpen             Code = "circuit_open"
	Overloaded              Code = "overloaded"
	CredentialUnavailable   Code = "credential_unavailable"
	EgressDenied            Code = "egress_denied"
	UpstreamUnreachable     Code = "upstream_unreachable"
	InvalidUpstreamResponse Code = "invalid_upstream_response"
	WebhookRejected         Code = "webhook_rejected"
	// RequestTimeout: the request body did not arrive within the caller
	// listener's server.limits.caller.read_timeout or body_stall_timeout.
	RequestTimeout Code = "request_timeout"
	// Internal is used only for recovered panics and bugs; it is not in the
	// DESIGN.md table because callers should never see it in normal operation.
	Internal Code = "internal_error"
)

type info struct {
	status int
	title  string
}

var codes = map[Code]info{
	BadRequestPath:          {http.StatusBadRequest, "Bad request path"},
	Unauthenticated:         {http.StatusUnauthorized, "Unauthenticated"},
	RouteNotAllowed:         {http.StatusForbidden, "Route not allowed"},
	UnknownIntegration:      {http.StatusNotFound, "Unknown integration"},
	RequestTooLarge:         {http.StatusRequestEntityTooLarge, "Request too large"},
	RateLimited:             {http.StatusTooManyRequests, "Rate limited"},
	UpstreamTimeout:         {http.StatusGatewayTimeout, "Upstream timeout"},
	ResponseTooLarge:        {http.StatusBadGateway, "Response too large"},
	IntegrationDisabled:     {http.StatusServiceUnavailable, "Integration disabled"},
	CircuitOpen:             {http.StatusServiceUnavailable, "Circuit open"},
	Overloaded:              {http.StatusServiceUnavailable, "Overloaded"},
	CredentialUnavailable:   {http.StatusServiceUnavailable, "Credential unavailable"},
	EgressDenied:            {http.StatusBadGateway, "Egress denied"},
	UpstreamUnreachable:     {http.StatusBadGateway, "Upstream unreachable"},
	InvalidUpstreamResponse: {http.StatusBadGateway, "Invalid upstream response"},
	WebhookRejected:         {http.StatusBadRequest, "Webhook rejected"},
	RequestTimeout:          {http.StatusRequestTimeout, "Request timeout"},
	Internal:                {http.StatusInternalServerError, "Internal error"},
}

// Status is the HTTP status for a code (500 for an unknown code).
func (c Code) Status() int {
	if i, ok := codes[c]; ok {
		return i.status
	}
	return http.StatusInternalServerError
}

// Title is the short human title for a code.
func (c Code) Title() string {
	if i, ok := codes[c]; ok {
		return i.title
	}
	return "Internal error"
}

// Error is a gateway refusal. Detail is shown to the caller and must never
// contain secrets or vendor bodies; Err is the cause, for logs only.
type Error struct {
	Code   Code
	Detail string
	// StatusOverride replaces the code's default status when non-zero
	// (webhook_rejected is 400 or 401).
	StatusOverride int
	// RetryAfter, when > 0, is sent as a Retry-After header in seconds.
	RetryAfter int
	Err        error
}

// New returns an *Error with a public detail.
func New(code Code, detail string) *Error { return &Error{Code: code, Detail: detail} }

// Wrap returns an *Error with a public detail and a private cause.
func Wrap(code Code, detail string, cause error) *Error {
	return &Error{Code: code, Detail: detail, Err: cause}
}

// Errorf is New with a formatted detail.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Err != nil {
		return string(e.Code) + ": " + e.Detail + ": " + e.Err.Error()
	}
	return string(e.Code) + ": " + e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// Status is the HTTP status the caller receives.
func (e *Error) Status() int {
	if e.StatusOverride != 0 {
		return e.StatusOverride
	}
	return e.Code.Status()
}

// As returns the *Error in err's chain, or an Internal error wrapping err
// when there is none (so an unexpected error never leaks its text).
func As(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	return &Error{Code: Internal, Detail: "internal error", Err: err}
}

// Body is the RFC 9457 document.
type Body struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Code      Code   `json:"code"`
	Detail    string `json:"detail,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// HeaderError is the response header naming the gateway's error code.
const HeaderError = "X-Portcullis-Error"

// Write renders err as problem+json. Only the public parts of err reach w.
func Write(w http.ResponseWriter, requestID string, err error) {
	pe := As(err)
	status := pe.Status()
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set(HeaderError, string(pe.Code))
	if pe.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(pe.RetryAfter))
	}
	b, _ := json.Marshal(Body{
		Type: "about:blank", Title: pe.Code.Title(), Status: status,
		Code: pe.Code, Detail: pe.Detail, RequestID: requestID,
	})
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
