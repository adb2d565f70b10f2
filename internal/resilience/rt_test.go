package resilience

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// scriptRT is an in-memory vendor: respond decides each call's outcome
// from its 1-based number. It records request bodies and tracks whether the
// response bodies it handed out were read to the end and closed.
type scriptRT struct {
	respond func(n int, req *http.Request) (*http.Response, error)

	mu     sync.Mutex
	calls  int
	bodies []string
	issued []*trackedBody
}

func (s *scriptRT) RoundTrip(req *http.Request) (*http.Response, error) {
	var body string
	if req.Body != nil {
		b, _ := io.ReadAll(req.Body)
		_ = req.Body.Close()
		body = string(b)
	}
	s.mu.Lock()
	s.calls++
	n := s.calls
	s.bodies = append(s.bodies, body)
	s.mu.Unlock()
	resp, err := s.respond(n, req)
	if resp != nil {
		tb := &trackedBody{Reader: strings.NewReader("vendor says " + resp.Status)}
		resp.Body = tb
		resp.Request = req
		s.mu.Lock()
		s.issued = append(s.issued, tb)
		s.mu.Unlock()
	}
	return resp, err
}

func (s *scriptRT) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

type trackedBody struct {
	*strings.Reader
	closed atomic.Bool
}

func (b *trackedBody) Close() error  { b.closed.Store(true); return nil }
func (b *trackedBody) drained() bool { return b.Len() == 0 }

func status(code int, kv ...string) *http.Response {
	return &http.Response{StatusCode: code, Status: http.StatusText(code), Header: hdr(kv...)}
}

// always answers every call with the same status.
func always(code int, kv ...string) func(int, *http.Request) (*http.Response, error) {
	return func(int, *http.Request) (*http.Response, error) { return status(code, kv...), nil }
}

// sequence answers call n with outcomes[n-1], repeating the last.
func sequence(outcomes ...any) func(int, *http.Request) (*http.Response, error) {
	return func(n int, req *http.Request) (*http.Response, error) {
		o := outcomes[min(n, len(outcomes))-1]
		switch o := o.(type) {
		case int:
			return status(o), nil
		case *http.Response:
			cp := *o
			return &cp, nil
		case error:
			return nil, o
		case string: // "hang": block until the attempt's context ends
			<-req.Context().Done()
			return nil, req.Context().Err()
		}
		panic("bad outcome")
	}
}

// noopRT answers 200 with an empty body and allocates nothing per call.
type noopRT struct{ resp http.Response }

func (n *noopRT) RoundTrip(*http.Request) (*http.Response, error) { return &n.resp, nil }

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
