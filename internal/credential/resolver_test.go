package credential

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

const canary = "canary-7f3a9c1e-DO-NOT-LOG"

// newFakeResolver returns a Resolver whose env: provider is fp.
func newFakeResolver(t *testing.T, clock *fakeClock, fp *fakeProvider) (*Resolver, *syncBuffer) {
	t.Helper()
	o, logs := testOptions(clock)
	r := NewResolver(o)
	r.env = fp
	t.Cleanup(r.Close)
	return r, logs
}

func TestResolveEnv(t *testing.T) {
	t.Setenv("PCS_TEST_SET", canary)
	t.Setenv("PCS_TEST_EMPTY", "")
	tests := []struct {
		name    string
		ref     string
		want    string
		wantErr error
	}{
		{name: "set-variable", ref: "env:PCS_TEST_SET", want: canary},
		{name: "unset-variable", ref: "env:PCS_TEST_UNSET_XYZ", wantErr: ErrNotFound},
		{name: "empty-variable", ref: "env:PCS_TEST_EMPTY", wantErr: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, logs := testOptions(nil)
			r := NewResolver(o)
			defer r.Close()
			s, err := r.Resolve(context.Background(), conf.MustRef(tt.ref), time.Minute, time.Minute)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tt.ref) {
					t.Errorf("error %q must wrap ErrUnavailable and name %s", err, tt.ref)
				}
				return
			}
			if got := s.Value.Reveal(); got != tt.want {
				t.Errorf("value = %q, want %q", got, tt.want)
			}
			if diff := cmp.Diff([]string{"gen-1", tt.ref}, []string{s.Version, s.Ref}); diff != "" {
				t.Errorf("version/ref (-want +got):\n%s", diff)
			}
			assertNoCanary(t, canary, logs.String(), fmt.Sprintf("%v %+v %#v", s, s, s))
		})
	}
}

func TestResolveBadReferences(t *testing.T) {
	tests := []struct {
		name string
		ref  conf.SecretRef
		want string
	}{
		{name: "no-reference", ref: conf.SecretRef{}, want: "no secret reference"},
		{name: "unknown-provider", ref: conf.SecretRef{Scheme: "aws", Target: "sm/x"}, want: `unknown provider "aws"`},
		{name: "vault-without-address", ref: conf.MustRef("vault:secret/data/x#k"), want: "VAULT_ADDR"},
		{name: "vault-kv-v1-shape", ref: conf.SecretRef{Scheme: "vault", Target: "secret/x#k"}, want: "MOUNT/data/PATH#KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, _ := testOptions(nil)
			r := NewResolver(o)
			defer r.Close()
			_, err := r.Resolve(context.Background(), tt.ref, time.Minute, 0)
			if !errors.Is(err, ErrBadReference) || !errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v, want ErrBadReference", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestResolveFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		path    string
		want    string
		wantErr error
	}{
		{name: "plain", path: write("plain", canary), want: canary},
		{name: "trailing-newline-trimmed", path: write("nl", canary+"\n"), want: canary},
		{name: "crlf-trimmed", path: write("crlf", canary+"\r\n"), want: canary},
		{name: "inner-spaces-kept", path: write("sp", "a b c d e f"), want: "a b c d e f"},
		{name: "missing-file", path: filepath.Join(dir, "nope"), wantErr: ErrNotFound},
		{name: "directory", path: dir, wantErr: ErrBadReference},
		{name: "empty-file", path: write("empty", "\n"), wantErr: ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, _ := testOptions(nil)
			r := NewResolver(o)
			defer r.Close()
			s, err := r.Resolve(context.Background(), conf.MustRef("file:"+tt.path), time.Minute, 0)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && s.Value.Reveal() != tt.want {
				t.Errorf("value = %q, want %q", s.Value.Reveal(), tt.want)
			}
			if err == nil && s.Created.IsZero() {
				t.Errorf("Created not set from the file's modification time")
			}
		})
	}
}

// A changed file is picked up through the watcher long before the TTL ends,
// both for in-place writes and for atomic renames (how Kubernetes and most
// deploy tools replace secrets).
func TestFileChangeIsSeenBeforeTTL(t *testing.T) {
	for _, mode := range []string{"in-place-write", "atomic-rename"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "token")
			if err := os.WriteFile(p, []byte("first-secret-value\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			o, logs := testOptions(nil)
			r := NewResolver(o)
			defer r.Close()
			ref := conf.MustRef("file:" + p)
			resolve := func() Secret {
				s, err := r.Resolve(context.Background(), ref, time.Hour, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			if got := resolve(); got.Version != "gen-1" {
				t.Fatalf("version = %q, want gen-1", got.Version)
			}
			if mode == "in-place-write" {
				if err := os.WriteFile(p, []byte(canary+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				tmp := filepath.Join(dir, ".token.tmp")
				if err := os.WriteFile(tmp, []byte(canary+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(tmp, p); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, 5*time.Second, "the new file content", func() bool { return resolve().Value.Reveal() == canary })
			if got := resolve().Version; got != "gen-2" {
				t.Errorf("version after change = %q, want gen-2", got)
			}
			if !strings.Contains(logs.String(), "secret rotated") {
				t.Errorf("no rotation log record: %s", logs)
			}
			assertNoCanary(t, canary, logs.String())
		})
	}
}

func TestCacheServesWithinTTL(t *testing.T) {
	clock := newClock()
	fp := &fakeProvider{val: "value-one-abcdef", version: "1"}
	r, _ := newFakeResolver(t, clock, fp)
	ref := conf.MustRef("env:X")
	for range 5 {
		if _, err := r.Resolve(context.Background(), ref, time.Minute, 0); err != nil {
			t.Fatal(err)
		}
		clock.Advance(10 * time.Second) // up to 40 s: under 3/4 of the TTL
	}
	if n := fp.count(); n != 1 {
		t.Errorf("provider read %d times within the TTL, want 1", n)
	}
}

// From 3/4 of the TTL a background read picks up a rotation while callers
// keep getting the cached value without waiting.
func TestBackgroundRefreshBeforeExpiry(t *testing.T) {
	clock := newClock()
	fp := &fakeProvider{val: "value-one-abcdef", version: "1"}
	r, logs := newFakeResolver(t, clock, fp)
	ref := conf.MustRef("env:X")
	ctx := context.Background()
	if _, err := r.Resolve(ctx, ref, time.Minute, 0); err != nil {
		t.Fatal(err)
	}
	fp.set("value-two-abcdef", "2", nil)
	clock.Advance(50 * time.Second)
	s, err := r.Resolve(ctx, ref, time.Minute, 0)
	if err != nil || s.Version != "1" {
		t.Fatalf("at 50s got version %q, %v; want the cached version 1 at once", s.Version, err)
	}
	eventually(t, 5*time.Second, "background read", func() bool {
		s, _ := r.Resolve(ctx, ref, time.Minute, 0)
		return s.Version == "2"
	})
	if !strings.Contains(logs.String(), `"old_version":"1"`) {
		t.Errorf("rotation not logged with versions: %s", logs)
	}
}

func TestStaleServingAndMaxStale(t *testing.T) {
	clock := newClock()
	fp := &fakeProvider{val: "value-one-abcdef", version: "1"}
	r, _ := newFakeResolver(t, clock, fp)
	ref := conf.MustRef("env:X")
	ctx := context.Background()
	ttl, maxStale := time.Minute, 5*time.Minute
	if _, err := r.Resolve(ctx, ref, ttl, maxStale); err != nil {
		t.Fatal(err)
	}
	fp.set("", "", fmt.Errorf("%w: connection refused", ErrUnavailable))
	for _, step := range []time.Duration{2 * time.Minute, 2 * time.Minute, 1*time.Minute + 50*time.Second} {
		clock.Advance(step)
		s, err := r.Resolve(ctx, ref, ttl, maxStale)
		if err != nil || s.Version != "1" {
			t.Fatalf("within max staleness got %q, %v; want the last good value", s.Version, err)
		}
	}
	clock.Advance(20 * time.Second) // 6m10s since the read: past ttl+maxStale
	_, err := r.Resolve(ctx, ref, ttl, maxStale)
	if !errors.Is(err, ErrStale) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("past max staleness err = %v, want ErrStale", err)
	}
	if !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "env:X") {
		t.Errorf("stale error %q should name the reference and the last cause", err)
	}
	fp.set("value-two-abcdef", "2", nil)
	clock.Advance(time.Minute) // past the back-off
	if s, err := r.Resolve(ctx, ref, ttl, maxStale); err != nil || s.Version != "2" {
		t.Errorf("after recovery got %q, %v; want version 2", s.Version, err)
	}
}

// Deleting or revoking a secret at its source is how operators revoke: the
// cached value must not be served on.
func TestDefinitiveAnswerDropsCachedValue(t *testing.T) {
	tests := []struct {
		name  string
		cause error
	}{{"not-found", ErrNotFound}, {"revoked", ErrRevoked}}
	for _, tt := range tests {
		cause := tt.cause
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			fp := &fakeProvider{val: "value-one-abcdef", version: "1"}
			r, logs := newFakeResolver(t, clock, fp)
			ref := conf.MustRef("env:X")
			ctx := context.Background()
			if _, err := r.Resolve(ctx, ref, time.Minute, time.Hour); err != nil {
				t.Fatal(err)
			}
			fp.set("", "", cause)
			clock.Advance(61 * time.Second)
			if _, err := r.Resolve(ctx, ref, time.Minute, time.Hour); !errors.Is(err, cause) {
				t.Fatalf("err = %v, want %v although max_stale is an hour", err, cause)
			}
			if !strings.Contains(logs.String(), "cached value dropped") {
				t.Errorf("drop not logged: %s", logs)
			}
		})
	}
}

// A provider that is down is not hammered: reads are spaced by back-off
// however many callers arrive.
func TestBackoffAfterFailure(t *testing.T) {
	clock := newClock()
	fp := &fakeProvider{err: fmt.Errorf("%w: down", ErrUnavailable)}
	r, _ := newFakeResolver(t, clock, fp)
	ref := conf.MustRef("env:X")
	for range 100 {
		if _, err := r.Resolve(context.Background(), ref, time.Minute, 0); err == nil {
			t.Fatal("want an error")
		}
	}
	if n := fp.count(); n != 1 {
		t.Fatalf("%d reads for 100 calls within the back-off, want 1", n)
	}
	clock.Advance(600 * time.Millisecond)
	_, _ = r.Resolve(context.Background(), ref, time.Minute, 0)
	if n := fp.count(); n != 2 {
		t.Errorf("%d reads after the first back-off, want 2", n)
	}
	tests := []struct {
		failures int
		want     time.Duration
	}{{1, 500 * time.Millisecond}, {2, time.Second}, {4, 4 * time.Second}, {10, 30 * time.Second}}
	for _, tt := range tests {
		if got := backoff(tt.failures, time.Hour); got != tt.want {
			t.Errorf("backoff(%d) = %s, want %s", tt.failures, got, tt.want)
		}
	}
	if got := backoff(10, 2*time.Second); got != time.Second {
		t.Errorf("backoff is capped at ttl/2: got %s, want 1s", got)
	}
}

// Many callers arriving at an empty cache share one read.
func TestConcurrentCallersShareOneRead(t *testing.T) {
	fp := &fakeProvider{val: "value-one-abcdef", version: "1", delay: 100 * time.Millisecond}
	r, _ := newFakeResolver(t, nil, fp)
	ref := conf.MustRef("env:X")
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			if _, err := r.Resolve(context.Background(), ref, time.Minute, 0); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := fp.count(); n != 1 {
		t.Errorf("%d provider reads for 50 concurrent callers, want 1", n)
	}
}

// A caller that gives up does not cancel the shared read for the others.
func TestCallerCancelDoesNotBreakRead(t *testing.T) {
	fp := &fakeProvider{val: "value-one-abcdef", version: "1", delay: 200 * time.Millisecond}
	r, _ := newFakeResolver(t, nil, fp)
	ref := conf.MustRef("env:X")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := r.Resolve(ctx, ref, time.Minute, 0); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want the caller's deadline wrapped in ErrUnavailable", err)
	}
	s, err := r.Resolve(context.Background(), ref, time.Minute, 0)
	if err != nil || s.Version != "1" {
		t.Fatalf("second caller got %v, %v", s.Version, err)
	}
	if n := fp.count(); n != 1 {
		t.Errorf("%d reads, want the first read to have completed for the second caller", n)
	}
}

func TestRefreshBypassesCache(t *testing.T) {
	clock := newClock()
	fp := &fakeProvider{val: "value-one-abcdef", version: "1"}
	r, _ := newFakeResolver(t, clock, fp)
	ref := conf.MustRef("env:X")
	if _, err := r.Resolve(context.Background(), ref, time.Hour, 0); err != nil {
		t.Fatal(err)
	}
	fp.set("value-two-abcdef", "2", nil)
	s, err := r.Refresh(context.Background(), ref)
	if err != nil || s.Version != "2" {
		t.Fatalf("Refresh = %q, %v; want version 2", s.Version, err)
	}
	if s, _ := r.Resolve(context.Background(), ref, time.Hour, 0); s.Version != "2" {
		t.Errorf("Resolve after Refresh = %q, want 2", s.Version)
	}
}
