package dashboard

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

// from makes c connect from the loopback address ip (127.0.0.0/8 is all
// loopback on Linux), so two clients of one rig are two addresses.
func (c *client) from(ip string) *client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c.hc.Transport = &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
	return c
}

// guess sends wrong tokens until one is answered 429, and fails the test
// if none is within burst+5.
func guess(t *testing.T, c *client) {
	t.Helper()
	for i := range loginFailBurst + 5 {
		if resp := c.login(fmt.Sprintf("pa_guess_%d", i)); resp.StatusCode == http.StatusTooManyRequests {
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			return
		}
	}
	t.Fatalf("%d wrong tokens in a row were never answered 429", loginFailBurst+5)
}

// TestLoginThrottleIsPerAddress: wrong tokens from address A do not
// throttle address B.
func TestLoginThrottleIsPerAddress(t *testing.T) {
	r := newRig(t, rigOptions{})
	guess(t, r.newClient(t).from("127.0.0.1"))
	b := r.newClient(t).from("127.0.0.2")
	if resp := b.login("pa_wrong"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token from another address: %d, want 401 (not throttled)", resp.StatusCode)
	}
	if resp := b.login(canaryAdmin); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("right token from another address: %d, want 303", resp.StatusCode)
	}
}

// TestCorrectTokenNotBlockedFromSameAddress: a browser that has logged in
// before gets in with the right token while someone at its own address is
// throttled for guessing; a forged device cookie does not escape the
// address's throttle.
func TestCorrectTokenNotBlockedFromSameAddress(t *testing.T) {
	r := newRig(t, rigOptions{})
	admin := r.newClient(t)
	if resp := admin.login(canaryAdmin); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first login: %d", resp.StatusCode)
	}
	admin.do(http.MethodPost, "/ui/logout", nil, map[string]string{CSRFHeader: admin.csrf})

	attacker := r.newClient(t) // same address, 127.0.0.1
	guess(t, attacker)
	if resp := attacker.login(canaryAdmin); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("right token from the throttled guesser: %d, want 429 (a throttled client learns nothing)", resp.StatusCode)
	}
	for _, forged := range []string{"x", strings.Repeat("A", 64), admin.deviceCookie(t)[:20] + "AAAA"} {
		forger := r.newClient(t)
		forger.setCookie(t, deviceCookie, forged)
		if resp := forger.login("pa_guess_forged"); resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("device cookie %q got a bucket of its own: %d, want 429", forged, resp.StatusCode)
		}
	}

	if resp := admin.login(canaryAdmin); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the admin's right token while guesses from the same address are throttled: %d, want 303", resp.StatusCode)
	}
	if _, body := admin.do(http.MethodGet, "/ui/api/session", nil, nil); !strings.Contains(body, `"actor":"admin:`) {
		t.Errorf("no session after the login: %s", body)
	}
	// The device's own wrong tokens are throttled in its own bucket.
	guess(t, admin)
}

func (c *client) deviceCookie(t *testing.T) string {
	t.Helper()
	u, _ := http.NewRequest(http.MethodPost, c.base+"/ui/login", nil)
	for _, ck := range c.hc.Jar.Cookies(u.URL) {
		if ck.Name == deviceCookie {
			return ck.Value
		}
	}
	t.Fatal("no device cookie after a login")
	return ""
}

func (c *client) setCookie(t *testing.T, name, value string) {
	t.Helper()
	u, _ := http.NewRequest(http.MethodPost, c.base+"/ui/login", nil)
	c.hc.Jar.SetCookies(u.URL, []*http.Cookie{{Name: name, Value: value, Path: "/ui/login"}})
}

func TestThrottleRefills(t *testing.T) {
	clk := clock.NewFake(t0)
	th := newThrottle(clk.Now)
	for range loginFailBurst {
		th.failed("addr:192.0.2.1")
	}
	ok, wait := th.allowed("addr:192.0.2.1")
	if ok || wait <= 0 || wait > loginFailEvery {
		t.Fatalf("after %d failures: allowed %v, wait %s", loginFailBurst, ok, wait)
	}
	clk.Advance(wait)
	if ok, _ := th.allowed("addr:192.0.2.1"); !ok {
		t.Error("not allowed after Retry-After")
	}
}

// TestThrottleBounded: a flood of addresses keeps the map bounded and
// does not make the gateway forget a throttled address first.
func TestThrottleBounded(t *testing.T) {
	clk := clock.NewFake(t0)
	th := newThrottle(clk.Now)
	for range loginFailBurst {
		th.failed("addr:192.0.2.1")
	}
	for i := range 3 * maxLoginClients {
		clk.Advance(10 * time.Microsecond)
		th.allowed(fmt.Sprintf("addr:2001:db8:%x::/64", i))
	}
	if n := len(th.buckets); n > maxLoginClients {
		t.Errorf("%d buckets kept, want at most %d", n, maxLoginClients)
	}
	if ok, _ := th.allowed("addr:192.0.2.1"); ok {
		t.Error("the throttled address was forgotten while idle ones were kept")
	}
}

func TestClientAddr(t *testing.T) {
	tests := []struct{ remote, want string }{
		{"192.0.2.7:5555", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:5555", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::/64"},
		{"not-an-address", "not-an-address"},
	}
	for _, tt := range tests {
		if got := clientAddr(tt.remote); got != tt.want {
			t.Errorf("clientAddr(%q) = %q, want %q", tt.remote, got, tt.want)
		}
	}
}

// FuzzDeviceCookie: the cookie parser never panics and accepts only
// values this process made.
func FuzzDeviceCookie(f *testing.F) {
	th := newThrottle(time.Now)
	good := th.newDevice()
	f.Add(good)
	f.Add("")
	f.Add(good[:len(good)-1] + "A")
	f.Add(strings.Repeat("A", 64))
	f.Fuzz(func(t *testing.T, v string) {
		if _, ok := th.verifyDevice(v); ok && v != good {
			// Another valid encoding of the same bytes is fine; anything
			// else passing the HMAC is not.
			if _, ok2 := newThrottle(time.Now).verifyDevice(v); ok2 {
				t.Fatalf("accepted under a random key: %q", v)
			}
		}
	})
}
