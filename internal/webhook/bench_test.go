package webhook

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

// BenchmarkVerify is the cost of one verification with two secrets
// configured (rotation) and a 1 KiB body.
func BenchmarkVerify(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	for _, sc := range schemeCases {
		b.Run(sc.name, func(b *testing.B) {
			v, _ := NewVerifier(&sc.cfg)
			secrets := []secret.Value{sec(sc.secrets[0]), sec(sc.secrets[1])}
			h, _ := v.Sign(body, secrets[1:], SignParams{ID: "msg_1", Timestamp: baseTime})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(h, body, secrets, baseTime, time.Minute); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHandler is the whole public path (verify, replay id, enqueue) on
// the in-memory store, and the refusal of a bad signature.
func BenchmarkHandler(b *testing.B) {
	f := newFixture(b, testWebhooks("http://127.0.0.1:1/unused"))
	f.clock = clock.NewFake(time.Now())
	f.opts.Clock = clock.System() // buckets refill as in production
	n := 0
	source := func() string { // spread over sources: measure the path, not the limiter
		n = (n + 1) % 4000
		return fmt.Sprintf("10.0.%d.%d:1000", n>>8, n&255)
	}
	f.opts.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil)) // production's cost, without the test buffer
	h := f.handler()
	b.Run("accepted", func(b *testing.B) {
		reqs := make([]*http.Request, 0, 1024)
		for b.Loop() {
			if len(reqs) == 0 {
				b.StopTimer()
				for range cap(reqs) {
					r := f.signed("payments", newID("msg_"), eventBody, "env:STD_NEW")
					r.RemoteAddr = source()
					reqs = append(reqs, r)
				}
				b.StartTimer()
			}
			r := reqs[len(reqs)-1]
			reqs = reqs[:len(reqs)-1]
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != 200 {
				b.Fatal(rec.Code, rec.Body)
			}
		}
	})
	b.Run("bad-signature", func(b *testing.B) {
		for b.Loop() {
			r := f.signed("payments", "msg_bad", eventBody, "env:INTERNAL")
			r.RemoteAddr = source()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != 401 {
				b.Fatal(rec.Code)
			}
		}
	})
}
