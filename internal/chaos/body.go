package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// maxBuffered bounds how much of a vendor body the body faults read into
// memory; a longer body is cut there first (the fault breaks it anyway).
const maxBuffered = 8 << 20

func readBody(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBuffered))
	if err != nil {
		return nil, fmt.Errorf("chaos: read vendor body: %w", err)
	}
	return b, nil
}

func setBody(resp *http.Response, b []byte) {
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	resp.Header.Del("Content-Encoding") // the new bytes are not the encoded ones
}

// truncate keeps the announced length but delivers only the first half,
// then io.ErrUnexpectedEOF, as a connection cut mid-body does.
func truncate(resp *http.Response) (*http.Response, error) {
	b, err := readBody(resp)
	if err != nil {
		return nil, err
	}
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	resp.ContentLength = int64(len(b))
	resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b[:len(b)/2]), errReader{io.ErrUnexpectedEOF}))
	return resp, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// corrupt flips the bits of the first byte and of every 7th byte after it,
// so a JSON or text body no longer parses; the length is unchanged.
func corrupt(resp *http.Response) (*http.Response, error) {
	b, err := readBody(resp)
	if err != nil {
		return nil, err
	}
	corruptBytes(b)
	setBody(resp, b)
	return resp, nil
}

func corruptBytes(b []byte) {
	for k := 0; k < len(b); k += 7 {
		b[k] ^= 0xff
	}
}

// oversize streams the vendor body followed by size bytes of spaces
// (JSON stays valid, only too big); the length is announced.
func oversize(resp *http.Response, size int64) *http.Response {
	if size <= 0 {
		size = DefaultOversize
	}
	if resp.ContentLength >= 0 {
		resp.ContentLength += size
		resp.Header.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	} else {
		resp.Header.Del("Content-Length")
	}
	orig := resp.Body
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(orig, io.LimitReader(spaces{}, size)), orig}
	return resp
}

type spaces struct{}

func (spaces) Read(p []byte) (int, error) {
	for k := range p {
		p[k] = ' '
	}
	return len(p), nil
}

// breakSchema returns a body of the wrong shape: a JSON object keeps its
// keys but every value changes type; anything else (an array, a scalar,
// an empty object, not JSON) becomes {"unexpected":true}.
func breakSchema(resp *http.Response) (*http.Response, error) {
	b, err := readBody(resp)
	if err != nil {
		return nil, err
	}
	setBody(resp, retype(b))
	resp.Header.Set("Content-Type", "application/json")
	return resp, nil
}

func retype(b []byte) []byte {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil || len(obj) == 0 {
		return []byte(`{"unexpected":true}`)
	}
	for k, v := range obj {
		obj[k] = otherType(v)
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return []byte(`{"unexpected":true}`)
	}
	return out
}

// otherType maps a JSON value to one of a different type.
func otherType(v json.RawMessage) json.RawMessage {
	t := bytes.TrimSpace(v)
	if len(t) == 0 {
		return json.RawMessage(`"unexpected"`)
	}
	switch t[0] {
	case '"':
		return json.RawMessage(`12345`)
	case '{':
		return json.RawMessage(`["unexpected"]`)
	case '[':
		return json.RawMessage(`{"unexpected":true}`)
	case 't', 'f':
		return json.RawMessage(`"unexpected"`)
	case 'n':
		return json.RawMessage(`{"unexpected":true}`)
	default: // a number
		return json.RawMessage(`"unexpected"`)
	}
}
