package mint

import (
	"strconv"
	"testing"
)

// BenchmarkLeafCached is a tunnel set-up for a host already minted: the
// cost every inspected CONNECT pays after the first.
func BenchmarkLeafCached(b *testing.B) {
	a := newAuthority(b, Options{Allowed: allowAll})
	if _, err := a.Leaf("api.vendor.test"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Leaf("api.vendor.test"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLeafMint mints a new leaf each time (P-256 key, ECDSA
// signature by the CA): the first CONNECT to a host, or one a day.
func BenchmarkLeafMint(b *testing.B) {
	a := newAuthority(b, Options{Allowed: allowAll, CacheSize: 1})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := a.Leaf("h" + strconv.Itoa(i) + ".vendor.test"); err != nil {
			b.Fatal(err)
		}
	}
}
