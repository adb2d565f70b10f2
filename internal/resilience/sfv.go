package resilience

import (
	"errors"
	"strconv"
	"strings"
)

// This file parses the subset of HTTP Structured Field Values (RFC 9651)
// that the IETF RateLimit fields use: Lists and Dictionaries of Items with
// Parameters. It is hand-written because no structured-field module is on
// the project's approved module list, and the subset is small; it follows
// the RFC's parsing algorithms (section 4.2) and rejects anything else.

var errSF = errors.New("malformed structured field")

// sfToken is a Token bare item (as opposed to a String).
type sfToken string

// sfItem is an Item (or an Inner List, whose Value is []sfItem) with its Parameters.
type sfItem struct {
	Value  any // int64, float64, string, sfToken, []byte (undecoded base64), bool, []sfItem
	Params []sfParam
}

type sfParam struct {
	Key   string
	Value any
}

// param returns the value of parameter key, if present.
func (it sfItem) param(key string) (any, bool) {
	for _, p := range it.Params {
		if p.Key == key {
			return p.Value, true
		}
	}
	return nil, false
}

type sfMember struct {
	Key  string // dictionary members only
	Item sfItem
}

type sfParser struct {
	s string
	i int
}

func (p *sfParser) eof() bool { return p.i >= len(p.s) }
func (p *sfParser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.i]
}

func (p *sfParser) skipSP() {
	for !p.eof() && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for !p.eof() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// parseSFList parses a List (RFC 9651 §4.2.1).
func parseSFList(s string) ([]sfItem, error) {
	ms, err := parseSFMembers(s, false)
	if len(ms) == 0 {
		return nil, err
	}
	out := make([]sfItem, len(ms))
	for i, m := range ms {
		out[i] = m.Item
	}
	return out, err
}

// parseSFDict parses a Dictionary (RFC 9651 §4.2.2); later duplicate keys win.
func parseSFDict(s string) ([]sfMember, error) { return parseSFMembers(s, true) }

func parseSFMembers(s string, dict bool) ([]sfMember, error) {
	p := &sfParser{s: s}
	p.skipSP()
	var out []sfMember
	for !p.eof() {
		var m sfMember
		if dict {
			key, err := p.key()
			if err != nil {
				return nil, err
			}
			m.Key = key
			if p.peek() == '=' {
				p.i++
				if m.Item, err = p.member(); err != nil {
					return nil, err
				}
			} else {
				m.Item.Value = true
				if m.Item.Params, err = p.params(); err != nil {
					return nil, err
				}
			}
		} else {
			var err error
			if m.Item, err = p.member(); err != nil {
				return nil, err
			}
		}
		out = append(out, m)
		p.skipOWS()
		if p.eof() {
			return out, nil
		}
		if p.peek() != ',' {
			return nil, errSF
		}
		p.i++
		p.skipOWS()
		if p.eof() {
			return nil, errSF // trailing comma
		}
	}
	return out, nil
}

func (p *sfParser) member() (sfItem, error) {
	if p.peek() == '(' {
		return p.innerList()
	}
	return p.item()
}

func (p *sfParser) innerList() (sfItem, error) {
	p.i++ // (
	var items []sfItem
	for !p.eof() {
		p.skipSP()
		if p.peek() == ')' {
			p.i++
			params, err := p.params()
			return sfItem{Value: items, Params: params}, err
		}
		it, err := p.item()
		if err != nil {
			return sfItem{}, err
		}
		items = append(items, it)
		if c := p.peek(); c != ' ' && c != ')' {
			return sfItem{}, errSF
		}
	}
	return sfItem{}, errSF
}

func (p *sfParser) item() (sfItem, error) {
	v, err := p.bareItem()
	if err != nil {
		return sfItem{}, err
	}
	params, err := p.params()
	return sfItem{Value: v, Params: params}, err
}

func (p *sfParser) params() ([]sfParam, error) {
	var out []sfParam
	for p.peek() == ';' {
		p.i++
		p.skipSP()
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		var v any = true
		if p.peek() == '=' {
			p.i++
			if v, err = p.bareItem(); err != nil {
				return nil, err
			}
		}
		out = append(out, sfParam{Key: key, Value: v})
	}
	return out, nil
}

func isLCAlpha(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool   { return isLCAlpha(c) || (c >= 'A' && c <= 'Z') }

func (p *sfParser) key() (string, error) {
	start := p.i
	if c := p.peek(); !isLCAlpha(c) && c != '*' {
		return "", errSF
	}
	for !p.eof() {
		c := p.s[p.i]
		if !isLCAlpha(c) && !isDigit(c) && !strings.ContainsRune("_-.*", rune(c)) {
			break
		}
		p.i++
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) bareItem() (any, error) {
	c := p.peek()
	switch {
	case c == '-' || isDigit(c):
		return p.number()
	case c == '"':
		return p.str()
	case c == '*' || isAlpha(c):
		return p.token(), nil
	case c == ':':
		return p.bytes()
	case c == '?':
		return p.boolean()
	case c == '@': // RFC 9651 Date: an Integer of seconds since the epoch
		p.i++
		return p.number()
	}
	return nil, errSF
}

func (p *sfParser) number() (any, error) {
	start := p.i
	if p.peek() == '-' {
		p.i++
	}
	if !isDigit(p.peek()) {
		return nil, errSF
	}
	dot := -1
	for !p.eof() {
		c := p.s[p.i]
		if c == '.' && dot < 0 {
			dot = p.i
		} else if !isDigit(c) {
			break
		}
		p.i++
	}
	num := p.s[start:p.i]
	digits := strings.TrimPrefix(num, "-")
	if dot < 0 {
		if len(digits) > 15 {
			return nil, errSF
		}
		return strconv.ParseInt(num, 10, 64)
	}
	intPart, frac, _ := strings.Cut(digits, ".")
	if len(intPart) > 12 || frac == "" || len(frac) > 3 {
		return nil, errSF
	}
	return strconv.ParseFloat(num, 64)
}

func (p *sfParser) str() (any, error) {
	p.i++ // opening quote
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\':
			if p.eof() {
				return nil, errSF
			}
			n := p.s[p.i]
			if n != '"' && n != '\\' {
				return nil, errSF
			}
			b.WriteByte(n)
			p.i++
		case c == '"':
			return b.String(), nil
		case c < 0x20 || c > 0x7e:
			return nil, errSF
		default:
			b.WriteByte(c)
		}
	}
	return nil, errSF
}

func (p *sfParser) token() sfToken {
	start := p.i
	p.i++
	for !p.eof() {
		c := p.s[p.i]
		if isAlpha(c) || isDigit(c) || strings.ContainsRune("!#$%&'*+-.^_`|~:/", rune(c)) {
			p.i++
			continue
		}
		break
	}
	return sfToken(p.s[start:p.i])
}

func (p *sfParser) bytes() (any, error) {
	p.i++
	end := strings.IndexByte(p.s[p.i:], ':')
	if end < 0 {
		return nil, errSF
	}
	v := p.s[p.i : p.i+end]
	for i := 0; i < len(v); i++ {
		if c := v[i]; !isAlpha(c) && !isDigit(c) && c != '+' && c != '/' && c != '=' {
			return nil, errSF
		}
	}
	p.i += end + 1
	return []byte(v), nil
}

func (p *sfParser) boolean() (any, error) {
	p.i++
	switch p.peek() {
	case '1':
		p.i++
		return true, nil
	case '0':
		p.i++
		return false, nil
	}
	return nil, errSF
}
