package dashboard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Wrong dashboard logins are throttled per client, not for everyone at
// once: with one global bucket, anyone who could reach the admin listener
// locked the real admin out with ten wrong tokens.
//
// A client is its device cookie when it sends a valid one, else its
// address (an IPv6 address by its /64, which one host usually owns
// whole). Each client has a bucket of loginFailBurst wrong tokens, refilled
// at one per loginFailEvery. A login from a client whose bucket is empty
// is answered 429 without looking at the token — so a throttled guesser
// learns nothing, right token or wrong, and gets at most one verified
// guess per loginFailEvery per address.
//
// The device cookie is what keeps a correct token from being blocked: it
// is set by every successful login (a random id and an HMAC under a key
// that never leaves the process), sent back only to /ui/login, and gives
// that browser a bucket of its own. Guesses from another client, even one
// behind the same address or NAT, never empty it. Only a browser that has
// not logged in since the gateway started shares its address's bucket; it
// waits Retry-After seconds once the guessing there stops.
const (
	loginFailBurst = 10
	loginFailEvery = time.Second
	// maxLoginClients bounds the buckets kept; see throttle.bucket.
	maxLoginClients = 4096
	deviceCookie    = "portcullis_device"
	deviceMaxAge    = 90 * 24 * time.Hour
)

type throttle struct {
	now func() time.Time
	key [32]byte // HMAC key of device cookies, random per process

	mu      sync.Mutex
	buckets map[string]*loginBucket
}

type loginBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newThrottle(now func() time.Time) *throttle {
	th := &throttle{now: now, buckets: map[string]*loginBucket{}}
	_, _ = rand.Read(th.key[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return th
}

// client names r's bucket: "device:<id>" for a valid device cookie, else
// "addr:<ip or /64>".
func (th *throttle) client(r *http.Request) string {
	if c, err := r.Cookie(deviceCookie); err == nil {
		if id, ok := th.verifyDevice(c.Value); ok {
			return "device:" + id
		}
	}
	return "addr:" + clientAddr(r.RemoteAddr)
}

// clientAddr is the host of a RemoteAddr, an IPv6 one cut to its /64.
// X-Forwarded-For is not trusted: the admin listener is not meant to sit
// behind a proxy that sets it (docs/dashboard.md).
func clientAddr(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// allowed reports whether client may try a token now (its bucket is not
// empty), and if not, how long until it may.
func (th *throttle) allowed(client string) (bool, time.Duration) {
	th.mu.Lock()
	defer th.mu.Unlock()
	now := th.now()
	b := th.bucket(client, now)
	if b.lim.TokensAt(now) >= 1 {
		return true, 0
	}
	r := b.lim.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	return false, wait
}

// failed takes one token from client's bucket.
func (th *throttle) failed(client string) {
	th.mu.Lock()
	defer th.mu.Unlock()
	now := th.now()
	th.bucket(client, now).lim.AllowN(now, 1)
}

// bucket returns client's bucket, making one. When maxLoginClients are
// kept, full buckets (clients with no recent failure: forgetting them loses
// nothing) are dropped first, then the least recently seen eighth. An
// attacker with more addresses than that can make the gateway forget some
// of them; each address still gets no more than its own burst at a time.
//
// A scan of the map rather than an LRU library: it runs once per
// maxLoginClients/8 new clients at most (BenchmarkThrottleFull).
func (th *throttle) bucket(client string, now time.Time) *loginBucket {
	if b, ok := th.buckets[client]; ok {
		b.seen = now
		return b
	}
	if len(th.buckets) >= maxLoginClients {
		for k, b := range th.buckets {
			if b.lim.TokensAt(now) >= loginFailBurst {
				delete(th.buckets, k)
			}
		}
	}
	if len(th.buckets) >= maxLoginClients {
		keys := make([]string, 0, len(th.buckets))
		for k := range th.buckets {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int { return th.buckets[a].seen.Compare(th.buckets[b].seen) })
		for _, k := range keys[:len(keys)/8+1] {
			delete(th.buckets, k)
		}
	}
	b := &loginBucket{lim: rate.NewLimiter(rate.Every(loginFailEvery), loginFailBurst), seen: now}
	th.buckets[client] = b
	return b
}

// newDevice returns a device cookie value: 16 random bytes and their HMAC.
func (th *throttle) newDevice() string {
	id := make([]byte, 16, 16+sha256.Size)
	_, _ = rand.Read(id)
	return base64.RawURLEncoding.EncodeToString(append(id, th.mac(id)...))
}

func (th *throttle) mac(id []byte) []byte {
	m := hmac.New(sha256.New, th.key[:])
	m.Write([]byte("portcullis device cookie\x00"))
	m.Write(id)
	return m.Sum(nil)
}

// verifyDevice returns the id of a device cookie this process made.
func (th *throttle) verifyDevice(v string) (string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(raw) != 16+sha256.Size {
		return "", false
	}
	id, sum := raw[:16], raw[16:]
	if !hmac.Equal(sum, th.mac(id)) {
		return "", false
	}
	return base64.RawURLEncoding.EncodeToString(id), true
}
