package gateway

import (
	"bufio"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/problem"
)

// TestVendorFieldsReachTheCaller: the vendor's answer fields reach the
// caller with all their values in order (modifyResponse moves them into
// the caller's header instead of ReverseProxy copying them), without the
// fields only the gateway may set; an answer refused after the fields
// were read carries none of them.
func TestVendorFieldsReachTheCaller(t *testing.T) {
	v := newVendor(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Vendor-One"] = []string{"a"}
		h["Link"] = []string{"<a.css>; rel=preload", "<b.css>; rel=preload"}
		h.Set("Cache-Control", "no-store")
		h.Set("Set-Cookie", "session=vendor")
		h.Set("X-Portcullis-Error", "spoofed")
		h.Set("X-Request-Id", "spoofed")
		h.Set("Content-Type", "text/plain")
		if r.URL.Path == "/v1/big" {
			h.Set("Content-Length", "8192")
			w.WriteHeader(200)
			w.Write(make([]byte, 8192))
			return
		}
		w.Write([]byte("ok"))
	})
	f := newFixture(t, v.URL, baseConfig)
	for _, inProcess := range []bool{false, true} {
		t.Run("in-process="+strconv.FormatBool(inProcess), func(t *testing.T) {
			srv := f.srv
			if inProcess {
				f.srv = nil // f.do drives the handler with a recorder
				defer func() { f.srv = srv }()
			}
			resp := f.do(t, "GET", "/payments/v1/charges/fields", f.billing, nil, map[string]string{"X-Request-Id": "req-fields"})
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			want := map[string][]string{
				"X-Vendor-One":  {"a"},
				"Link":          {"<a.css>; rel=preload", "<b.css>; rel=preload"},
				"Cache-Control": {"no-store"},
				"Content-Type":  {"text/plain"},
				"X-Request-Id":  {"req-fields"},
			}
			for k, vv := range want {
				if got := resp.Header.Values(k); !slices.Equal(got, vv) {
					t.Errorf("%s = %q, want %q", k, got, vv)
				}
			}
			for _, k := range []string{"Set-Cookie", "X-Portcullis-Error"} {
				if got := resp.Header.Values(k); len(got) != 0 {
					t.Errorf("caller got %s: %q", k, got)
				}
			}

			resp = f.do(t, "GET", "/payments/v1/big", f.billing, nil, nil)
			if resp.StatusCode != 502 || problemOf(t, resp).Code != problem.ResponseTooLarge {
				t.Fatalf("status %d, want 502 response_too_large", resp.StatusCode)
			}
			for _, k := range []string{"X-Vendor-One", "Link"} { // (Cache-Control: no-store is the problem answer's own)
				if got := resp.Header.Values(k); len(got) != 0 {
					t.Errorf("the refusal carries the vendor's %s: %q", k, got)
				}
			}
		})
	}
}

// TestEventStreamFlushedAtOnce: a text/event-stream answer reaches the
// caller event by event even with a known length (ReverseProxy reads the
// answer's Content-Type after modifyResponse: it must still be there).
// The vendor holds the rest of the stream until the caller has seen the
// first event; if the gateway buffered it, the vendor would give up
// waiting after 10s and the test fails.
func TestEventStreamFlushedAtOnce(t *testing.T) {
	const first, rest = "data: one\n\n", "data: two\n\n"
	seen := make(chan struct{})
	heldBack := make(chan bool, 1)
	v := newVendor(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(first)+len(rest)))
		w.Write([]byte(first))
		w.(http.Flusher).Flush()
		select {
		case <-seen:
			heldBack <- true
		case <-time.After(10 * time.Second):
			heldBack <- false
		}
		w.Write([]byte(rest))
	})
	cfg := strings.Replace(baseConfig, "request: 2s", "request: 30s", 1) + "      - {method: GET, path: /v1/events, callers: [billing]}\n"
	f := newFixture(t, v.URL, cfg)
	resp := f.do(t, "GET", "/payments/v1/events", f.billing, nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(seen)
	if !<-heldBack {
		t.Error("the first event reached the caller only with the rest: the stream was buffered")
	}
}
