package credential

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

// fakeClock is the injected clock for cache ages, token lifetimes and back-off.
type fakeClock = clock.Fake

func newClock() *fakeClock { return clock.NewFake(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)) }

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// testOptions returns Options with a JSON logger into the returned buffer.
func testOptions(clock *fakeClock) (Options, *syncBuffer) {
	buf := &syncBuffer{}
	o := Options{
		Logger:          slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Scrubber:        secret.NewScrubber(),
		FetchTimeout:    5 * time.Second,
		HTTPClient:      &http.Client{Transport: testBase()},
		VaultHTTPClient: &http.Client{Transport: testBase()},
	}
	if clock != nil {
		o.Clock = clock
	}
	return o, buf
}

// testBase is the base transport of tests whose token endpoints, Vault and
// vendors are httptest servers or local servers on loopback ports chosen at
// run time: a direct transport without a proxy. The gateway passes
// egress-guarded clients instead; egress_test.go tests those.
func testBase() *http.Transport { return &http.Transport{Proxy: nil} }

// fakeProvider serves a programmable value and counts reads.
type fakeProvider struct {
	mu      sync.Mutex
	val     string
	version string
	err     error
	reads   int
	delay   time.Duration
}

func (f *fakeProvider) set(val, version string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.val, f.version, f.err = val, version, err
}

func (f *fakeProvider) count() int { f.mu.Lock(); defer f.mu.Unlock(); return f.reads }

func (f *fakeProvider) fetch(ctx context.Context, _ string) (Secret, error) {
	f.mu.Lock()
	f.reads++
	val, version, err, delay := f.val, f.version, f.err, f.delay
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return Secret{}, ctx.Err()
		}
	}
	if err != nil {
		return Secret{}, err
	}
	return Secret{Value: secret.New(val), Version: version}, nil
}

// assertNoCanary fails if canary appears in any of the texts.
func assertNoCanary(t *testing.T, canary string, texts ...string) {
	t.Helper()
	for i, s := range texts {
		if strings.Contains(s, canary) {
			t.Errorf("text %d leaks the secret: %q", i, s)
		}
	}
}

// eventually polls cond for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
