// Command loadgen is the benchmark's load generator.
//
//	loadgen run    -name N -phase P -url URL [-conns C] [-rate R] [-duration D] [-warmup W] [-out FILE]
//	loadgen report -in FILE            print the tables and the targets from the results
//	loadgen rate   -in FILE -name N    print half of N's median peak req/s (for the open-loop run)
//	loadgen wait   -addr HOST:PORT     wait until something accepts connections there
//
// run is closed-loop by default (each of -conns connections sends its next
// request when the previous answer is in: peak throughput) and open-loop
// with -rate (requests are due at a fixed rate whatever the server does,
// and latency counts from the due time: the latency a caller would see at
// that load). Only 2xx answers count as throughput; anything else is an
// error. One JSON line per run is appended to -out.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

func cli(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: loadgen run|report|rate|wait [flags]")
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(args[1:], stdout)
	case "report":
		err = cmdReport(args[1:], stdout)
	case "rate":
		err = cmdRate(args[1:], stdout)
	case "wait":
		err = cmdWait(args[1:])
	default:
		err = fmt.Errorf("unknown command %q", args[0])
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	return 0
}

func cmdRun(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	name := fs.String("name", "target", "target name in the report (direct, nginx, bare-go, portcullis)")
	phase := fs.String("phase", phasePeak, "peak, half-peak or concurrency")
	round := fs.Int("round", 1, "round number, for the report")
	rawURL := fs.String("url", "", "http://127.0.0.1:PORT/path to GET (loopback only)")
	authEnv := fs.String("auth-env", "", "send Authorization: Bearer $VAR")
	conns := fs.Int("conns", 50, "connections (closed loop: also the concurrency)")
	rate := fs.Float64("rate", 0, "open loop at this many requests per second (0: closed loop)")
	duration := fs.Duration("duration", 10*time.Second, "measured window")
	warmup := fs.Duration("warmup", 2*time.Second, "load before the window, not measured")
	timeout := fs.Duration("timeout", 10*time.Second, "per request")
	ramp := fs.Duration("ramp", 0, "closed loop: start the connections evenly over this long")
	maxSamples := fs.Int("max-samples", 20_000_000, "cap on latency samples kept")
	serverPID := fs.Int("server-pid", 0, "report this process's CPU and peak RSS as the server's")
	upstreamPID := fs.Int("upstream-pid", 0, "report this process's CPU as the upstream's")
	out := fs.String("out", "", "append the result as a JSON line to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	target, err := loopbackURL(*rawURL)
	if err != nil {
		return err
	}
	if *duration <= 0 || *duration > time.Hour || *warmup < 0 || *warmup > time.Hour || *ramp < 0 || *ramp > *warmup+*duration {
		return errors.New("duration must be in (0, 1h], warmup in [0, 1h] and ramp in [0, warmup+duration]")
	}
	auth := ""
	if *authEnv != "" {
		if auth = os.Getenv(*authEnv); auth == "" {
			return fmt.Errorf("-auth-env %s: the variable is empty", *authEnv)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := execute(ctx, plan{name: *name, phase: *phase, target: target, auth: auth, conns: *conns, rate: *rate,
		warmup: *warmup, duration: *duration, ramp: *ramp, timeout: *timeout, maxSamples: *maxSamples,
		serverPID: *serverPID, upstreamPID: *upstreamPID})
	if err != nil {
		return err
	}
	res.Round = *round
	fmt.Fprintf(stdout, "  %-11s %-11s round %d: %8.0f req/s  p50 %6.2f ms  p99 %7.2f ms  errors %d\n",
		res.Phase, res.Name, res.Round, res.RPS, res.P50MS, res.P99MS, res.Errors+int64(res.DialErrors))
	if *out != "" {
		return appendResult(*out, res)
	}
	return nil
}

// errNotLoopback refuses targets off this machine: the benchmark sends
// tens of thousands of requests per second.
var errNotLoopback = errors.New("target must be http://127.0.0.1:PORT or http://[::1]:PORT")

func loopbackURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("-url: %w", err)
	}
	ip := net.ParseIP(u.Hostname())
	if u.Scheme != "http" || ip == nil || !ip.IsLoopback() || u.Port() == "" {
		return nil, fmt.Errorf("-url %q: %w", raw, errNotLoopback)
	}
	return u, nil
}

func appendResult(path string, r *Result) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := writeJSONLine(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func readResultsFile(path string) ([]*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	defer f.Close()
	return readResults(f)
}

func cmdReport(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	in := fs.String("in", "", "results file (JSON lines from run -out)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	results, err := readResultsFile(*in)
	if err != nil {
		return err
	}
	return writeReport(stdout, results)
}

func cmdRate(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("rate", flag.ContinueOnError)
	in := fs.String("in", "", "results file")
	name := fs.String("name", namePortcullis, "target whose peak is halved")
	if err := fs.Parse(args); err != nil {
		return err
	}
	results, err := readResultsFile(*in)
	if err != nil {
		return err
	}
	r := halfPeakRate(results, *name)
	if r <= 0 {
		return fmt.Errorf("no peak result for %q in %s", *name, *in)
	}
	fmt.Fprintf(stdout, "%.0f\n", r)
	return nil
}

func cmdWait(args []string) error {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	addr := fs.String("addr", "", "host:port")
	timeout := fs.Duration("timeout", 20*time.Second, "give up after")
	if err := fs.Parse(args); err != nil {
		return err
	}
	deadline := time.Now().Add(*timeout)
	for {
		c, err := net.DialTimeout("tcp", *addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting connections after %s: %w", *addr, *timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
