package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is what one load run prints (one JSON line).
type loadResult struct {
	Mode     string  `json:"mode"`
	Via      string  `json:"via"`
	N        int     `json:"n"`               // measured cycles
	Total    int64   `json:"total,omitempty"` // successful cycles, warm-up included
	Errors   int64   `json:"errors"`
	PerSec   float64 `json:"per_sec,omitempty"`
	P50ms    float64 `json:"p50_ms,omitempty"`
	P99ms    float64 `json:"p99_ms,omitempty"`
	MBPerSec float64 `json:"mb_per_sec,omitempty"`
}

type loadConfig struct {
	proxy, target, auth string
	conns               int
	duration, warmup    time.Duration
}

func runLoad(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	mode := fs.String("mode", "setup", "setup: CONNECT + one GET + close per cycle; bulk: read through one tunnel")
	var c loadConfig
	fs.StringVar(&c.proxy, "proxy", "", "proxy host:port (empty: connect to -target directly)")
	fs.StringVar(&c.target, "target", "127.0.0.1:18081", "vendor host:port (the CONNECT target)")
	fs.StringVar(&c.auth, "auth", "", "caller:token for Proxy-Authorization (empty: none)")
	fs.IntVar(&c.conns, "conns", 32, "concurrent connections")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "measured time")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured time before")
	_ = fs.Parse(args)

	var res loadResult
	var err error
	switch *mode {
	case "setup":
		res, err = loadSetup(c)
	case "bulk":
		res, err = loadBulk(c)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		return err
	}
	res.Via = c.proxy
	if res.Via == "" {
		res.Via = "direct"
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// open dials the proxy and sends CONNECT, or dials the target directly.
func (c loadConfig) open() (net.Conn, *bufio.Reader, error) {
	addr := c.target
	if c.proxy != "" {
		addr = c.proxy
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(conn, 4096)
	if c.proxy == "" {
		return conn, br, nil
	}
	req := "CONNECT " + c.target + " HTTP/1.1\r\nHost: " + c.target + "\r\n"
	if c.auth != "" {
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(c.auth)) + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		conn.Close()
		return nil, nil, err
	}
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		conn.Close()
		return nil, nil, fmt.Errorf("CONNECT: %s", resp.Status)
	}
	return conn, br, nil
}

// cycler runs set-up cycles with the request bytes built once and one
// read buffer, so the load generator (which shares a core with the
// vendor) spends little per cycle and the proxy's speed, not the
// generator's, bounds the rate.
type cycler struct {
	c       loadConfig
	connect []byte // nil: direct
	get     []byte
	buf     []byte
}

func (c loadConfig) newCycler() *cycler {
	cy := &cycler{c: c, buf: make([]byte, 4096),
		get: []byte("GET / HTTP/1.1\r\nHost: " + c.target + "\r\nConnection: close\r\n\r\n")}
	if c.proxy != "" {
		req := "CONNECT " + c.target + " HTTP/1.1\r\nHost: " + c.target + "\r\n"
		if c.auth != "" {
			req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(c.auth)) + "\r\n"
		}
		cy.connect = []byte(req + "\r\n")
	}
	return cy
}

// is200 reports whether a response head starts with an HTTP/1.x 200
// status line (Smokescreen answers CONNECT with HTTP/1.0).
func is200(head []byte) bool {
	return len(head) >= 13 && bytes.HasPrefix(head, []byte("HTTP/1.")) && string(head[8:13]) == " 200 "
}

// cycle is one set-up measurement: connect (and CONNECT through the
// proxy, checking for 200 and the end of its head), one GET, read the
// answer to EOF (the vendor closes after it), check for 200, close.
func (cy *cycler) cycle() error {
	addr := cy.c.target
	if cy.connect != nil {
		addr = cy.c.proxy
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if cy.connect != nil {
		if _, err := conn.Write(cy.connect); err != nil {
			return err
		}
		n := 0
		for !bytes.Contains(cy.buf[:n], []byte("\r\n\r\n")) {
			if n == len(cy.buf) {
				return errors.New("CONNECT: response head too long")
			}
			m, err := conn.Read(cy.buf[n:])
			n += m
			if err != nil {
				return fmt.Errorf("CONNECT: %w", err)
			}
		}
		if !is200(cy.buf[:n]) {
			line, _, _ := bytes.Cut(cy.buf[:n], []byte("\r\n"))
			return fmt.Errorf("CONNECT: %s", line)
		}
	}
	if _, err := conn.Write(cy.get); err != nil {
		return err
	}
	n := 0
	for {
		m, err := conn.Read(cy.buf[n:])
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if n == len(cy.buf) {
			return errors.New("GET: response longer than the buffer")
		}
	}
	if !is200(cy.buf[:n]) {
		line, _, _ := bytes.Cut(cy.buf[:n], []byte("\r\n"))
		return fmt.Errorf("GET: %q", line)
	}
	return nil
}

func loadSetup(c loadConfig) (loadResult, error) {
	if err := c.newCycler().cycle(); err != nil {
		return loadResult{}, fmt.Errorf("first cycle: %w", err)
	}
	start := time.Now()
	measureFrom := start.Add(c.warmup)
	end := measureFrom.Add(c.duration)
	var errs, total atomic.Int64
	lat := make([][]time.Duration, c.conns)
	var wg sync.WaitGroup
	for i := range c.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cy := c.newCycler()
			for {
				t0 := time.Now()
				if t0.After(end) {
					return
				}
				err := cy.cycle()
				if err == nil {
					total.Add(1)
				}
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil {
					errs.Add(1)
					continue
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	return summarize("setup", "cycle", lat, total.Load(), errs.Load(), c.duration)
}

// summarize turns the per-client latencies of a measured run into its
// result: count, rate over the measured duration, p50 and p99.
func summarize(mode, what string, lat [][]time.Duration, total, errs int64, d time.Duration) (loadResult, error) {
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return loadResult{}, fmt.Errorf("no successful %s (%d errors)", what, errs)
	}
	pct := func(p float64) float64 {
		return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000
	}
	return loadResult{
		Mode: mode, N: len(all), Total: total, Errors: errs,
		PerSec: float64(len(all)) / d.Seconds(),
		P50ms:  pct(0.50), P99ms: pct(0.99),
	}, nil
}

// loadBulk reads from the vendor's byte source through -conns tunnels.
func loadBulk(c loadConfig) (loadResult, error) {
	var total atomic.Int64
	var errs atomic.Int64
	measuring := atomic.Bool{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range c.conns {
		conn, br, err := c.open()
		if err != nil {
			return loadResult{}, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			buf := make([]byte, 256<<10)
			for {
				select {
				case <-stop:
					return
				default:
				}
				n, err := br.Read(buf)
				if measuring.Load() {
					total.Add(int64(n))
				}
				if err != nil {
					errs.Add(1)
					return
				}
			}
		}()
	}
	time.Sleep(c.warmup)
	measuring.Store(true)
	time.Sleep(c.duration)
	measuring.Store(false)
	close(stop)
	wg.Wait()
	return loadResult{
		Mode: "bulk", N: c.conns, Errors: errs.Load(),
		MBPerSec: float64(total.Load()) / c.duration.Seconds() / 1e6,
	}, nil
}
