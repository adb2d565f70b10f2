package dashboard

import (
	"fmt"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

// BenchmarkThrottleFull: a failed login from a new client while
// maxLoginClients throttled clients are kept (the eviction path).
func BenchmarkThrottleFull(b *testing.B) {
	clk := clock.NewFake(t0)
	th := newThrottle(clk.Now)
	for i := range maxLoginClients {
		for range loginFailBurst {
			th.failed(fmt.Sprintf("addr:10.0.%d.%d", i/256, i%256))
		}
	}
	for i := 0; b.Loop(); i++ {
		clk.Advance(time.Microsecond)
		th.failed(fmt.Sprintf("addr:new-%d", i))
	}
}
