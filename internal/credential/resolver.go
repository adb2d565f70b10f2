package credential

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

// DefaultTTL is the cache lifetime of a resolved secret when none is given.
const DefaultTTL = 5 * time.Minute

// Secret is resolved material plus metadata for the audit.
type Secret struct {
	Value secret.Value
	// Version is the KV version for vault:, else a counter that goes up each
	// time the value read from env: or file: changes ("gen-1", "gen-2"…).
	Version string
	// Created is the KV version's created_time, a file's modification time,
	// or when this process first saw an env: value.
	Created time.Time
	// Ref is the reference text, e.g. "vault:secret/data/payments#api_key".
	Ref string
}

// provider reads one secret. target is the reference without its scheme.
type provider interface {
	fetch(ctx context.Context, target string) (Secret, error)
}

// Resolver resolves secret references through the env:, file: and vault:
// providers, caching each value for its TTL.
//
// Cache rules for Resolve(ref, ttl, maxStale):
//   - a value younger than 3/4 of ttl is served from memory;
//   - from 3/4 of ttl on it is still served, and one background read starts,
//     so a busy integration picks up a rotated secret before the TTL ends;
//   - past ttl the caller waits for a read (one per reference however many
//     callers wait); if it fails, the last good value is served until it is
//     ttl+maxStale old, then ErrStale;
//   - after a failed read, reads are spaced by an exponential back-off
//     (500 ms doubling, at most 30 s or ttl/2), so a down provider sees no
//     retry storm;
//   - a definitive answer (ErrNotFound, ErrRevoked: the variable, file, KV
//     path or key is gone, or the KV version was deleted or destroyed) drops
//     the cached value at once: deletion is how an operator revokes.
//
// file: references are also watched (fsnotify on the file's directory, so
// atomic renames and Kubernetes symlink swaps are seen) and re-read 100 ms
// after a change. Resolver is safe for concurrent use; Close stops it.
type Resolver struct {
	o   Options
	log *slog.Logger

	ctx    context.Context // cancelled by Close; parent of every provider read
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sf     singleflight.Group

	mu      sync.Mutex
	closed  bool
	entries map[refKey]*entry
	env     provider
	file    *fileProvider
	vault   *vaultProvider
}

type entry struct {
	key    string // ref text
	scheme string
	target string

	mu         sync.Mutex
	ttl        time.Duration
	maxStale   time.Duration
	cur        Secret
	have       bool
	fetched    time.Time // last successful read
	gen        int       // counts value changes
	refreshing bool      // a background read is running
	failures   int
	nextTry    time.Time // no read before this after a failure
	lastErr    error
}

// NewResolver returns a Resolver. It contacts no provider until the first
// Resolve.
func NewResolver(o Options) *Resolver {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Resolver{o: o, log: o.logger(), ctx: ctx, cancel: cancel, entries: map[refKey]*entry{}}
	r.env = envProvider{}
	return r
}

// Close stops background reads and the file watcher and waits for them.
func (r *Resolver) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	fp := r.file
	r.mu.Unlock()
	r.cancel()
	if fp != nil {
		fp.close()
	}
	r.wg.Wait()
}

// Resolve returns the secret ref points at, following the cache rules on
// Resolver. ttl <= 0 means DefaultTTL; maxStale <= 0 means no stale serving.
// Errors wrap ErrUnavailable and a *RefError naming the reference.
func (r *Resolver) Resolve(ctx context.Context, ref conf.SecretRef, ttl, maxStale time.Duration) (Secret, error) {
	e, err := r.entryFor(ref)
	if err != nil {
		return Secret{}, err
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	now := r.o.now()
	e.mu.Lock()
	e.ttl, e.maxStale = ttl, max(maxStale, 0)
	if e.have {
		age := now.Sub(e.fetched)
		if age < e.ttl {
			if age >= e.ttl*3/4 && !now.Before(e.nextTry) {
				r.refreshAsync(e)
			}
			s := e.cur
			e.mu.Unlock()
			return s, nil
		}
		if now.Before(e.nextTry) {
			defer e.mu.Unlock()
			return e.staleOrErr(now, e.lastErr)
		}
	} else if e.lastErr != nil && now.Before(e.nextTry) {
		err := e.lastErr
		e.mu.Unlock()
		return Secret{}, err
	}
	e.mu.Unlock()

	err = r.read(ctx, e)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err == nil && e.have {
		return e.cur, nil
	}
	if err == nil {
		err = e.lastErr
	}
	return e.staleOrErr(r.o.now(), err)
}

// Refresh reads ref now, bypassing the cache and the back-off, and returns
// the fresh value. Concurrent calls share one read. It is what an admin
// refresh-credentials and a vendor 401 trigger.
func (r *Resolver) Refresh(ctx context.Context, ref conf.SecretRef) (Secret, error) {
	e, err := r.entryFor(ref)
	if err != nil {
		return Secret{}, err
	}
	if err := r.read(ctx, e); err != nil {
		return Secret{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.have {
		return Secret{}, e.lastErr
	}
	return e.cur, nil
}

// entryState is what Status reports about a reference.
type entryState struct {
	cur     Secret
	have    bool
	fetched time.Time
	lastErr error
}

func (r *Resolver) state(ref conf.SecretRef) entryState {
	r.mu.Lock()
	e := r.entries[refKey{ref.Scheme, ref.Target}]
	r.mu.Unlock()
	if e == nil {
		return entryState{}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return entryState{cur: e.cur, have: e.have, fetched: e.fetched, lastErr: e.lastErr}
}

// entryFor returns the cache entry of ref, creating it with DefaultTTL and
// no staleness (Resolve sets its own on every call).
func (r *Resolver) entryFor(ref conf.SecretRef) (*entry, error) {
	if ref.Scheme == "" { // ref.Ref() == ""
		return nil, &RefError{Ref: "(none)", Err: fmt.Errorf("%w: no secret reference configured", ErrBadReference)}
	}
	k := refKey{ref.Scheme, ref.Target}
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[k]
	if !ok {
		e = &entry{key: ref.Ref(), scheme: ref.Scheme, target: ref.Target, ttl: DefaultTTL}
		r.entries[k] = e
	}
	return e, nil
}

// refKey is a reference as a map key: its text (ref.Ref()) without
// building the string on every Resolve.
type refKey struct{ scheme, target string }

// staleOrErr decides, after a failed or skipped read, between the last good
// value and an error. e.mu must be held.
func (e *entry) staleOrErr(now time.Time, cause error) (Secret, error) {
	if cause == nil {
		cause = fmt.Errorf("%w: no value read yet", ErrUnavailable)
	}
	if !e.have {
		return Secret{}, asRefError(e.key, cause)
	}
	if age := now.Sub(e.fetched); age >= e.ttl+e.maxStale {
		return Secret{}, &RefError{Ref: e.key, Err: fmt.Errorf("%w: last good value read %s ago: %w", ErrStale, age.Round(time.Second), unwrapRef(cause))}
	}
	return e.cur, nil
}

// read runs one provider read for e, shared with concurrent callers, and
// waits for it or for ctx.
func (r *Resolver) read(ctx context.Context, e *entry) error {
	ch := r.sf.DoChan(e.key, func() (any, error) { return nil, r.fetch(e) })
	select {
	case res := <-ch:
		return res.Err
	case <-ctx.Done():
		return &RefError{Ref: e.key, Err: fmt.Errorf("%w: gave up waiting for the secret: %w", ErrUnavailable, ctx.Err())}
	}
}

// refreshAsync starts one background read of e if none runs. e.mu must be held.
func (r *Resolver) refreshAsync(e *entry) {
	if e.refreshing {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	e.refreshing = true
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		_, _, _ = r.sf.Do(e.key, func() (any, error) { return nil, r.fetch(e) })
		e.mu.Lock()
		e.refreshing = false
		e.mu.Unlock()
	}()
}

// fetch reads e from its provider and records the outcome.
func (r *Resolver) fetch(e *entry) error {
	ctx, cancel := context.WithTimeout(r.ctx, r.o.fetchTimeout())
	defer cancel()
	var s Secret
	var err error
	if e.scheme == "vault" {
		_, _, _, err = splitVaultTarget(e.target) // say "malformed" before "not configured"
	}
	var p provider
	if err == nil {
		p, err = r.providerFor(e.scheme)
	}
	if err == nil {
		s, err = p.fetch(ctx, e.target)
	}
	if err == nil && s.Value.IsZero() {
		err = fmt.Errorf("%w: the secret is empty", ErrUnavailable)
	}
	if err != nil && !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	now := r.o.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		err = asRefError(e.key, err)
		e.lastErr = err
		e.failures++
		e.nextTry = now.Add(backoff(e.failures, e.ttl))
		switch {
		case definitive(err) && e.have:
			r.log.Warn("secret removed or revoked at its source; cached value dropped", logRef, e.key, logVersion, e.cur.Version, logError, r.o.scrubString(err.Error()))
			e.have, e.cur = false, Secret{}
		case e.failures == 1 || e.failures%10 == 0:
			r.log.Warn("secret read failed", logRef, e.key, "failures", e.failures, logError, r.o.scrubString(err.Error()))
		}
		return err
	}
	r.o.scrub(s.Value)
	changed := !e.have || !e.cur.Value.Equal(s.Value)
	if changed {
		e.gen++
	}
	if s.Version == "" {
		s.Version = "gen-" + strconv.Itoa(e.gen)
	}
	if s.Created.IsZero() {
		if changed {
			s.Created = now
		} else {
			s.Created = e.cur.Created
		}
	}
	s.Ref = e.key
	if e.have && (changed || s.Version != e.cur.Version) {
		r.log.Info("secret rotated", logRef, e.key, "old_version", e.cur.Version, logVersion, s.Version)
	}
	if e.failures > 0 {
		r.log.Info("secret read recovered", logRef, e.key, "failures", e.failures)
	}
	e.cur, e.have, e.fetched = s, true, now
	e.lastErr, e.failures, e.nextTry = nil, 0, time.Time{}
	return nil
}

func (r *Resolver) providerFor(scheme string) (provider, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("%w: resolver closed", ErrUnavailable)
	}
	switch scheme {
	case "env":
		return r.env, nil
	case "file":
		if r.file == nil {
			r.file = newFileProvider(r)
		}
		return r.file, nil
	case "vault":
		if r.vault == nil {
			vp, err := newVaultProvider(r)
			if err != nil {
				return nil, err
			}
			r.vault = vp
		}
		return r.vault, nil
	}
	return nil, fmt.Errorf("%w: unknown provider %q (want env, file or vault)", ErrBadReference, scheme)
}

// reread re-reads the file entries that match (after a change event). A
// read already in flight may have started before the change, so it is
// waited out and then a second read runs.
func (r *Resolver) reread(match func(target string) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	for _, e := range r.entries {
		if e.scheme != "file" || !match(e.target) {
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			f := func() (any, error) { return nil, r.fetch(e) }
			_, _, _ = r.sf.Do(e.key, f)
			_, _, _ = r.sf.Do(e.key, f)
		}()
	}
}

func backoff(failures int, ttl time.Duration) time.Duration {
	limit := min(30*time.Second, max(ttl/2, 100*time.Millisecond))
	d := 500 * time.Millisecond
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

func asRefError(key string, err error) error {
	var re *RefError
	if errors.As(err, &re) {
		return err
	}
	return &RefError{Ref: key, Err: err}
}

func unwrapRef(err error) error {
	var re *RefError
	if errors.As(err, &re) {
		return re.Err
	}
	return err
}
