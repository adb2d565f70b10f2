package webhook

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxSources bounds the per-source limiter table. Past it, idle sources are
// dropped and, while it is still full, new sources share one overflow
// limiter, so a flood from many addresses costs bounded memory and still
// cannot exceed its rate.
const maxSources = 4096

// sourceLimiter is a token bucket per source address (IPv6 by /64, since one
// host holds a whole /64).
type sourceLimiter struct {
	limit    rate.Limit
	burst    int
	mu       sync.Mutex
	sources  map[netip.Prefix]*rate.Limiter
	overflow *rate.Limiter
}

// newSourceLimiter takes a provisioned rate (Spec.RateLimit, > 0).
func newSourceLimiter(perSecond float64) *sourceLimiter {
	burst := max(1, int(2*perSecond))
	return &sourceLimiter{
		limit:    rate.Limit(perSecond),
		burst:    burst,
		sources:  map[netip.Prefix]*rate.Limiter{},
		overflow: rate.NewLimiter(rate.Limit(perSecond), burst),
	}
}

// sourceKey is the rate-limit key for a RemoteAddr ("ip:port"). The webhook
// listener faces the internet directly, so forwarding headers are not trusted.
func sourceKey(remoteAddr string) netip.Prefix {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

func (l *sourceLimiter) allow(src netip.Prefix, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.sources[src]
	if !ok {
		if len(l.sources) >= maxSources {
			for k, v := range l.sources {
				if v.TokensAt(now) >= float64(l.burst) {
					delete(l.sources, k) // full bucket: forgetting it changes nothing
				}
			}
		}
		if len(l.sources) >= maxSources {
			return l.overflow.AllowN(now, 1)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.sources[src] = lim
	}
	return lim.AllowN(now, 1)
}

// Burst detection defaults: this many bad signatures on one webhook within
// the window raise one alert event (then at most one per window).
const (
	DefaultBurstThreshold = 20
	DefaultBurstWindow    = time.Minute
)

// burstDetector counts bad signatures per webhook in a sliding window.
type burstDetector struct {
	threshold int
	window    time.Duration
	mu        sync.Mutex
	times     []time.Time // the most recent failures, oldest first, at most threshold
	lastAlert time.Time
}

func newBurstDetector(threshold int, window time.Duration) *burstDetector {
	if threshold <= 0 {
		threshold = DefaultBurstThreshold
	}
	if window <= 0 {
		window = DefaultBurstWindow
	}
	return &burstDetector{threshold: threshold, window: window}
}

// record notes one failure at now and reports whether it completes a burst
// that should raise an alert.
func (b *burstDetector) record(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	cut := 0
	for cut < len(b.times) && now.Sub(b.times[cut]) > b.window {
		cut++
	}
	b.times = append(b.times[cut:], now)
	if len(b.times) > b.threshold {
		b.times = b.times[len(b.times)-b.threshold:]
	}
	if len(b.times) < b.threshold {
		return false
	}
	if !b.lastAlert.IsZero() && now.Sub(b.lastAlert) < b.window {
		return false
	}
	b.lastAlert = now
	return true
}
