package sdk

import (
	"cmp"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// PEP440 is a parsed Python package version. Hand-written: OSV's PyPI
// ranges need PEP 440 ordering, and no maintained Go module for it is
// available here; this covers the whole public version scheme (epoch,
// release, pre, post, dev, local).
type PEP440 struct {
	Epoch   int64
	Release []int64
	PreKind int   // 0 a, 1 b, 2 rc; -1 none
	Pre     int64 // number of the pre-release
	Post    int64 // -1 none
	Dev     int64 // -1 none
	Local   string
}

var rePEP440 = regexp.MustCompile(`^v?(?:(\d+)!)?(\d+(?:\.\d+)*)` +
	`(?:[-_.]?(a|b|c|rc|alpha|beta|pre|preview)[-_.]?(\d*))?` +
	`(?:-(\d+)|[-_.]?(post|rev|r)[-_.]?(\d*))?` +
	`(?:[-_.]?(dev)[-_.]?(\d*))?` +
	`(?:\+([a-z0-9]+(?:[-_.][a-z0-9]+)*))?$`)

// ParsePEP440 parses a version such as "2.31.0", "1.0rc1", "1!2.0.post3.dev4".
func ParsePEP440(s string) (PEP440, error) {
	m := rePEP440.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return PEP440{}, fmt.Errorf("%w: not a PEP 440 version", ErrParse)
	}
	var err error
	num := func(t string) int64 {
		if t == "" {
			return 0
		}
		n, e := strconv.ParseInt(t, 10, 64)
		if e != nil && err == nil {
			err = fmt.Errorf("%w: version number out of range", ErrParse)
		}
		return n
	}
	v := PEP440{Epoch: num(m[1]), PreKind: -1, Post: -1, Dev: -1, Local: m[10]}
	for _, part := range strings.Split(m[2], ".") {
		v.Release = append(v.Release, num(part))
	}
	if m[3] != "" {
		v.PreKind = map[string]int{"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2, "pre": 2, "preview": 2}[m[3]]
		v.Pre = num(m[4])
	}
	switch {
	case m[5] != "":
		v.Post = num(m[5])
	case m[6] != "":
		v.Post = num(m[7])
	}
	if m[8] != "" {
		v.Dev = num(m[9])
	}
	return v, err
}

// ComparePEP440 orders two versions as PEP 440 does.
func ComparePEP440(a, b PEP440) int {
	if c := cmp.Compare(a.Epoch, b.Epoch); c != 0 {
		return c
	}
	n := max(len(a.Release), len(b.Release))
	for i := range n {
		if c := cmp.Compare(at(a.Release, i), at(b.Release, i)); c != 0 {
			return c
		}
	}
	if c := slices.Compare(a.key(), b.key()); c != 0 {
		return c
	}
	return cmp.Compare(a.Local, b.Local)
}

func at(r []int64, i int) int64 {
	if i < len(r) {
		return r[i]
	}
	return 0
}

// key is (pre kind, pre number, post, dev) with the PEP 440 sentinels: a
// dev release of a final version sorts before its pre-releases, a final
// version after them; no post sorts before any post; no dev after any dev.
func (v PEP440) key() []int64 {
	preKind, pre := int64(v.PreKind), v.Pre
	switch {
	case v.PreKind < 0 && v.Post < 0 && v.Dev >= 0:
		preKind, pre = math.MinInt64, 0
	case v.PreKind < 0:
		preKind, pre = math.MaxInt64, 0
	}
	post := v.Post
	if post < 0 {
		post = math.MinInt64
	}
	dev := v.Dev
	if dev < 0 {
		dev = math.MaxInt64
	}
	return []int64{preKind, pre, post, dev}
}
