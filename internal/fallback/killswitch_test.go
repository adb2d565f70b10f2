package fallback

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/store"
)

func TestKillSwitchReplicasNoticeWithinASecond(t *testing.T) {
	clk := clock.NewFake(t0)
	kv := store.NewMemory(clk) // shared, as Redis would be
	a, b := NewKillSwitch(kv, clk, nil), NewKillSwitch(kv, clk, nil)
	if b.Disabled("payments") {
		t.Fatal("disabled before anyone flipped it")
	}
	clk.Advance(100 * time.Millisecond)
	if err := a.Disable(context.Background(), "payments", "alice"); err != nil {
		t.Fatal(err)
	}
	if !a.Disabled("payments") {
		t.Error("the replica that flipped the switch does not see it at once")
	}
	if a.Disabled("maps") {
		t.Error("disabling payments disabled maps")
	}
	clk.Advance(900 * time.Millisecond) // 1s since b's last read
	if !b.Disabled("payments") {
		t.Error("replica b did not notice within a second")
	}
	if err := b.Enable(context.Background(), "payments", "bob"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if a.Disabled("payments") {
		t.Error("replica a did not notice the re-enable within a second")
	}
}

func TestKillSwitchPersistsAcrossRestart(t *testing.T) {
	clk := clock.NewFake(t0)
	kv := store.NewMemory(clk)
	if err := NewKillSwitch(kv, clk, nil).Disable(context.Background(), "sms", "oncall@corp"); err != nil {
		t.Fatal(err)
	}
	restarted := NewKillSwitch(kv, clk, nil)
	if !restarted.Disabled("sms") {
		t.Error("a restarted process forgot the kill switch")
	}
	got, err := restarted.State(context.Background(), "sms")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(SwitchState{Disabled: true, By: "oncall@corp", At: t0}, got); diff != "" {
		t.Errorf("State (-want +got):\n%s", diff)
	}
}

// flakyKV can be switched to failing.
type flakyKV struct {
	store.KV
	mu   sync.Mutex
	down bool
}

func (f *flakyKV) Get(ctx context.Context, k string) ([]byte, error) {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		return nil, errDown
	}
	return f.KV.Get(ctx, k)
}

func TestKillSwitchKeepsLastKnownStateWhenStoreFails(t *testing.T) {
	clk := clock.NewFake(t0)
	kv := &flakyKV{KV: store.NewMemory(clk)}
	writer, reader := NewKillSwitch(kv, clk, nil), NewKillSwitch(kv, clk, nil)
	_ = writer.Disable(context.Background(), "crm", "alice")
	if !reader.Disabled("crm") {
		t.Fatal("reader did not see the switch")
	}
	kv.mu.Lock()
	kv.down = true
	kv.mu.Unlock()
	clk.Advance(5 * time.Second)
	if !reader.Disabled("crm") {
		t.Error("a store outage re-enabled a disabled integration")
	}
	if NewKillSwitch(kv, clk, nil).Disabled("crm") {
		t.Error("never-known state with the store down should read as enabled")
	}
}

func TestKillSwitchConcurrentReaders(t *testing.T) {
	kv := store.NewMemory(nil)
	k := NewKillSwitch(kv, nil, nil)
	_ = k.Disable(context.Background(), "ai", "alice")
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 200 {
				if !k.Disabled("ai") {
					t.Error("read enabled")
					return
				}
			}
		})
	}
	wg.Wait()
}
