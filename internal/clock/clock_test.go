package clock

import (
	"context"
	"errors"
	"testing"
	"time"
)

var now0 = time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)

func TestFakeFiresInDeadlineOrder(t *testing.T) {
	clk := NewFake(now0)
	late, early := clk.After(2*time.Second), clk.After(time.Second)
	fired := make(chan string, 2)
	stop := clk.AfterFunc(1500*time.Millisecond, func() { fired <- "func" })

	clk.Advance(999 * time.Millisecond)
	select {
	case <-early:
		t.Fatal("timer fired before its deadline")
	default:
	}
	clk.Advance(time.Millisecond)
	if got := <-early; !got.Equal(now0.Add(time.Second)) {
		t.Errorf("early fired with %v, want %v", got, now0.Add(time.Second))
	}
	clk.Advance(time.Second)
	<-late
	if got := <-fired; got != "func" {
		t.Errorf("AfterFunc did not run")
	}
	if stop() {
		t.Error("stop after firing reported true")
	}
	if n := clk.Waiters(); n != 0 {
		t.Errorf("Waiters() = %d after all fired, want 0", n)
	}
}

func TestFakeStopPreventsCall(t *testing.T) {
	clk := NewFake(now0)
	called := make(chan struct{}, 1)
	stop := clk.AfterFunc(time.Second, func() { called <- struct{}{} })
	if !stop() {
		t.Fatal("stop before firing reported false")
	}
	clk.Advance(time.Hour)
	select {
	case <-called:
		t.Fatal("stopped AfterFunc ran")
	case <-time.After(20 * time.Millisecond):
	}
}

func TestFakeSetNeverGoesBack(t *testing.T) {
	clk := NewFake(now0)
	clk.Set(now0.Add(-time.Hour))
	if !clk.Now().Equal(now0) {
		t.Errorf("Now() = %v after Set into the past, want %v", clk.Now(), now0)
	}
}

func TestSleepReturnsWhenContextEnds(t *testing.T) {
	clk := NewFake(now0)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Sleep(ctx, clk, time.Hour) }()
	if err := clk.BlockUntil(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep = %v, want context.Canceled", err)
	}
}

func TestSleepWaitsForClock(t *testing.T) {
	clk := NewFake(now0)
	errc := make(chan error, 1)
	go func() { errc <- Sleep(context.Background(), clk, time.Minute) }()
	if err := clk.BlockUntil(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if err := <-errc; err != nil {
		t.Errorf("Sleep = %v, want nil", err)
	}
}
