package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/portcullis-dev/portcullis/internal/observe"
	"github.com/portcullis-dev/portcullis/internal/policy"
	"github.com/portcullis-dev/portcullis/internal/problem"
)

// outbound is the per-request data the ReverseProxy hooks need.
type outbound struct {
	in        *integration
	path      string // escaped vendor path, already checked
	requestID string
	rec       *observe.Record
}

type outboundKey struct{}

func outboundFrom(ctx context.Context) *outbound {
	ob, _ := ctx.Value(outboundKey{}).(*outbound)
	return ob
}

// serve runs the policy steps of DESIGN.md's request path in order and hands
// an allowed request to the integration's reverse proxy.
func (rt *runtime) serve(w http.ResponseWriter, r *http.Request, rec *observe.Record) error {
	// 2. integration: the first segment of the request target as received.
	target := r.RequestURI
	if !strings.HasPrefix(target, "/") {
		return problem.New(problem.BadRequestPath, "request target must be /{integration}/{vendor path}")
	}
	path, _, _ := strings.Cut(target, "?")
	name, vendorPath, found := strings.Cut(path[1:], "/")
	vendorPath = "/" + vendorPath
	in, ok := rt.integrations[name]
	if !ok {
		return problem.New(problem.UnknownIntegration, "no such integration; the first path segment names the integration")
	}
	_ = found
	rec.Integration = name

	// 3. caller identity.
	caller, how, ok := rt.auth.Request(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="portcullis"`)
		return problem.New(problem.Unauthenticated, "send Authorization: Bearer <caller token> or a client certificate")
	}
	rec.Caller, rec.Auth = caller, string(how)

	// 4. path hygiene, before any matching.
	segs, err := policy.CheckPath(vendorPath)
	if err != nil {
		return problem.Wrap(problem.BadRequestPath, publicPathReason(err), err)
	}

	// 5. route policy, deny by default.
	d := in.routes.Decide(policy.Args{Method: r.Method, Segments: segs, Caller: caller})
	rec.Route = d.Route
	if !d.Allowed {
		return problem.New(problem.RouteNotAllowed, d.Reason)
	}
	policy.StripMethodOverride(r.Header)
	policy.StripPathOverride(r.Header)

	// 7. the request body, bounded. It is kept in memory (at most
	// max_request_bytes) so that a safe retry or a credential refresh can
	// send it again.
	if r.ContentLength > in.maxReq {
		return problem.Errorf(problem.RequestTooLarge, "request body is over %d bytes", in.maxReq)
	}
	if r.Body != nil && r.Body != http.NoBody {
		body, err := readBounded(r.Body, in.maxReq, r.ContentLength)
		if err != nil {
			return err
		}
		rec.BytesIn = int64(len(body))
		r.ContentLength = int64(len(body))
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		if len(body) == 0 {
			r.Body, r.GetBody = http.NoBody, nil
		}
	}

	ctx := r.Context()
	if in.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, in.timeout)
		defer cancel()
	}
	ctx = context.WithValue(ctx, outboundKey{}, &outbound{in: in, path: vendorPath, requestID: rec.RequestID, rec: rec})
	in.proxy.ServeHTTP(w, r.WithContext(ctx))
	return nil
}

func publicPathReason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return "ambiguous or unsafe request path (" + msg + ")"
}

// readBounded reads at most limit bytes; more is request_too_large.
func readBounded(body io.Reader, limit, hint int64) ([]byte, error) {
	size := hint
	if size < 0 || size > limit {
		size = 512
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+1))
	n, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, problem.Wrap(problem.RequestTooLarge, "could not read the request body", err)
	}
	if n > limit {
		return nil, problem.New(problem.RequestTooLarge, "request body is over "+strconv.FormatInt(limit, 10)+" bytes")
	}
	return buf.Bytes(), nil
}

var errClientGone = errors.New("caller closed the connection")
