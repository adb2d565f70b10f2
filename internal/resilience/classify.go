package resilience

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
)

// RetryableError reports whether a transport error means the request
// probably never reached the vendor's application or the connection broke
// before an answer — the cases where resending an idempotent request helps:
// connection refused/reset/aborted, host or network unreachable, the
// connection closed before a response (EOF), network timeouts (dial, TLS
// handshake, response headers) and per-try timeouts. It is false for the
// caller's own cancellation or deadline, an open circuit, a rate-limit
// refusal, egress denials and certificate errors: retrying cannot fix those.
func RetryableError(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrTryTimeout):
		return true
	case errors.Is(err, ErrCircuitOpen), errors.Is(err, ErrRateLimited), errors.Is(err, ErrOverloaded):
		return false
	case isPermanent(err):
		return false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ETIMEDOUT),
		errors.Is(err, syscall.EPIPE):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.IsTimeout || dnsErr.IsTemporary
	}
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// isPermanent reports whether err says of itself that retrying cannot help
// (an error type with a Permanent() bool method, such as the gateway's
// wrapper for credential failures, which have their own refresh and
// back-off and must not be multiplied by retries).
func isPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}
