package fallback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// KillSwitchRefresh is how stale a replica's view of a kill switch may be.
const KillSwitchRefresh = time.Second

// SwitchState is one integration's kill switch.
type SwitchState struct {
	Disabled bool      `json:"disabled"`
	By       string    `json:"by,omitempty"` // who flipped it last (admin identity, free text)
	At       time.Time `json:"at,omitzero"`  // when it was flipped last
}

// KillSwitch turns integrations off and on. The state lives in a store.KV
// under "killswitch:<integration>" (so it survives restarts and, on Redis,
// is shared by replicas); each replica caches it and re-reads it when its
// copy is older than KillSwitchRefresh.
type KillSwitch struct {
	kv  store.KV
	clk clock.Clock
	log *slog.Logger
	sf  singleflight.Group

	mu    sync.Mutex
	cache map[string]cachedSwitch
}

type cachedSwitch struct {
	state   SwitchState
	fetched time.Time
}

// NewKillSwitch returns a KillSwitch over kv; a nil clock means the system
// clock, a nil logger discards.
func NewKillSwitch(kv store.KV, clk clock.Clock, log *slog.Logger) *KillSwitch {
	if clk == nil {
		clk = clock.System()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &KillSwitch{kv: kv, clk: clk, log: log, cache: map[string]cachedSwitch{}}
}

func killSwitchKey(name string) string { return "killswitch:" + name }

// Disable turns integration name off, recording who did it.
func (k *KillSwitch) Disable(ctx context.Context, name, by string) error {
	return k.set(ctx, name, SwitchState{Disabled: true, By: by, At: k.clk.Now()})
}

// Enable turns integration name back on, recording who did it.
func (k *KillSwitch) Enable(ctx context.Context, name, by string) error {
	return k.set(ctx, name, SwitchState{Disabled: false, By: by, At: k.clk.Now()})
}

func (k *KillSwitch) set(ctx context.Context, name string, s SwitchState) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("kill switch %s: %w", name, err)
	}
	if err := k.kv.Set(ctx, killSwitchKey(name), b, 0); err != nil {
		return fmt.Errorf("kill switch %s: storing: %w", name, err)
	}
	k.mu.Lock()
	k.cache[name] = cachedSwitch{state: s, fetched: k.clk.Now()}
	k.mu.Unlock()
	k.log.Info("kill switch flipped", slog.String("integration", name), slog.Bool("disabled", s.Disabled), slog.String("by", s.By))
	return nil
}

// Disabled reports whether integration name is switched off, from a copy
// at most KillSwitchRefresh old. If the store cannot be read, the last
// known state stands (never known: enabled) and the failure is logged.
// One read at a time per integration; the callers due for a re-read wait
// for it, which the store bounds (Redis: state.redis_timeout).
func (k *KillSwitch) Disabled(name string) bool {
	now := k.clk.Now()
	k.mu.Lock()
	c, ok := k.cache[name]
	k.mu.Unlock()
	if ok && now.Sub(c.fetched) < KillSwitchRefresh {
		return c.state.Disabled
	}
	v, _, _ := k.sf.Do(name, func() (any, error) {
		// Not the caller's context: the read serves every caller waiting.
		s, err := k.read(context.Background(), name)
		if err != nil {
			k.log.Warn("kill switch unreadable; keeping last known state", slog.String("integration", name), slog.Any("error", err))
			s = c.state
		}
		k.mu.Lock()
		k.cache[name] = cachedSwitch{state: s, fetched: k.clk.Now()}
		k.mu.Unlock()
		return s, nil
	})
	return v.(SwitchState).Disabled
}

// State reads integration name's switch from the store (for the admin API).
func (k *KillSwitch) State(ctx context.Context, name string) (SwitchState, error) {
	return k.read(ctx, name)
}

func (k *KillSwitch) read(ctx context.Context, name string) (SwitchState, error) {
	b, err := k.kv.Get(ctx, killSwitchKey(name))
	if errors.Is(err, store.ErrNotFound) {
		return SwitchState{}, nil
	}
	if err != nil {
		return SwitchState{}, fmt.Errorf("kill switch %s: reading: %w", name, err)
	}
	var s SwitchState
	if err := json.Unmarshal(b, &s); err != nil {
		return SwitchState{}, fmt.Errorf("kill switch %s: decoding: %w", name, err)
	}
	return s, nil
}
