package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// errStatus is a response that is not 2xx.
var errStatus = errors.New("non-2xx response")

// statusError carries the status and, for gateway refusals, the
// X-Portcullis-Error code, so the report can say why calls failed.
type statusError struct {
	status int
	code   string
}

func (e *statusError) Error() string {
	if e.code != "" {
		return "status " + strconv.Itoa(e.status) + " " + e.code
	}
	return "status " + strconv.Itoa(e.status)
}

func (e *statusError) Unwrap() error { return errStatus }

// client is one keep-alive HTTP/1.1 connection that sends the same GET
// again and again.
//
// Hand-written on a net.Conn instead of http.Client on purpose: the load
// generator shares a core with the upstream, so every microsecond it spends
// per request is taken from the system under test. http.Client runs two
// goroutines and several channel hand-offs per connection and request; a
// pre-encoded request and http.ReadResponse (the standard library's parser)
// cost a fraction of that. Responses are still parsed fully and checked.
type client struct {
	addr    string
	req     []byte
	timeout time.Duration
	conn    net.Conn
	br      *bufio.Reader
}

// newClient encodes the request once. auth, if set, is sent as
// "Authorization: Bearer <auth>".
func newClient(target *url.URL, auth string, timeout time.Duration) *client {
	req := "GET " + target.RequestURI() + " HTTP/1.1\r\nHost: " + target.Host + "\r\n" +
		"User-Agent: portcullis-loadgen\r\nAccept: application/json\r\n"
	if auth != "" {
		req += "Authorization: Bearer " + auth + "\r\n"
	}
	req += "\r\n"
	return &client{addr: target.Host, req: []byte(req), timeout: timeout}
}

func (c *client) dial() error {
	conn, err := net.DialTimeout("tcp", c.addr, c.dialTimeout())
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	c.conn = conn
	if c.br == nil {
		c.br = bufio.NewReaderSize(conn, 8<<10)
	} else {
		c.br.Reset(conn)
	}
	return nil
}

func (c *client) dialTimeout() time.Duration {
	if c.timeout > 0 {
		return c.timeout
	}
	return 10 * time.Second
}

// do sends the request and reads the whole response. Any I/O error closes
// the connection; the next call dials a new one.
func (c *client) do() error {
	if c.conn == nil {
		if err := c.dial(); err != nil {
			return err
		}
	}
	if c.timeout > 0 {
		if err := c.conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
			c.close()
			return fmt.Errorf("deadline: %w", err)
		}
	}
	if _, err := c.conn.Write(c.req); err != nil {
		c.close()
		return fmt.Errorf("write: %w", err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return fmt.Errorf("read response: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		c.close()
		return fmt.Errorf("read body: %w", err)
	}
	if resp.Close {
		c.close()
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &statusError{status: resp.StatusCode, code: resp.Header.Get("X-Portcullis-Error")}
	}
	return nil
}

func (c *client) close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}
