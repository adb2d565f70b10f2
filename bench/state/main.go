// Command state is the benchmark of issue 7: what the Redis state backend
// costs against the embedded one, on one machine. It runs `portcullis serve`
// twice in front of the same loopback upstream — state.backend memory
// (embedded) and redis — with rate_limit.global on, so every call makes the
// shared-limiter check, and prints one table: peak requests/second,
// latency at a fixed rate and what the gateway adds to calling the upstream
// directly, Redis commands and round trips per request, Redis CPU per
// request, the memory a usage record takes, and the calls each replica makes
// with no traffic at all (what grows with the number of replicas).
//
// bench/state/run.sh builds everything, starts a dedicated redis-server and
// runs this; see docs/replicas.md for how to read the numbers.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis-dev/portcullis/internal/identity"
)

type options struct {
	bin, redisAddr, dir, gatewayCPU string
	warmup, window, idle            time.Duration
	conns, calibrate, rounds        int
	rate                            float64
}

func main() {
	var o options
	flag.StringVar(&o.bin, "portcullis", ".cache/bench-state/bin/portcullis", "the portcullis binary")
	flag.StringVar(&o.redisAddr, "redis", "127.0.0.1:19390", "a Redis used by this benchmark only (it is FLUSHALLed)")
	flag.StringVar(&o.dir, "dir", ".cache/bench-state/run", "configs, data and gateway logs")
	flag.StringVar(&o.gatewayCPU, "gateway-cpu", "", "taskset CPU list for the gateway, with GOMAXPROCS=1 (empty: not pinned)")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "load before each measured window")
	flag.DurationVar(&o.window, "duration", 10*time.Second, "measured window of each run")
	flag.DurationVar(&o.idle, "idle", 5*time.Second, "how long the idle replica's Redis calls are counted")
	flag.IntVar(&o.conns, "conns", 32, "connections of the peak (closed-loop) runs")
	flag.IntVar(&o.calibrate, "calibrate", 2000, "sequential calls counted with MONITOR")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; the targets take turns in each, and the report shows every round and the median")
	flag.Float64Var(&o.rate, "rate", 500, "requests/second of the fixed-rate (open-loop) runs")
	flag.Parse()
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench/state:", err)
		os.Exit(1)
	}
}

// row is one line of the report.
type row struct {
	name        string
	round       int
	peak, fixed result
	redis       *redisCost // first round only
}

// redisCost is what the Redis backend asked of Redis.
type redisCost struct {
	cmdsPerReq, cpuUSPerReq, bytesPerRecord float64
	tripsPerReq                             map[string]float64
	idlePerSec                              map[string]float64
}

func run(o options, out io.Writer) error {
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	up, err := startUpstream()
	if err != nil {
		return err
	}
	defer up.Close()
	rdb := redis.NewClient(&redis.Options{Addr: o.redisAddr})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s: %w", o.redisAddr, err)
	}
	tok, hash, err := identity.NewToken()
	if err != nil {
		return err
	}

	direct := newLoader("http://"+up.Addr().String()+"/v1/items/42", "", o.conns)
	var rows []row
	for round := 1; round <= o.rounds; round++ {
		rows = append(rows, row{name: "direct (no gateway)", round: round,
			peak: direct.closed(o.conns, o.warmup, o.window), fixed: direct.open(o.rate, 64, o.window)})
		for _, backend := range []string{"memory", "redis"} {
			if err := rdb.FlushAll(ctx).Err(); err != nil {
				return err
			}
			gw, err := startGateway(o, backend, up.Addr().String(), hash)
			if err != nil {
				return err
			}
			r, err := measure(ctx, o, rdb, gw, tok, backend == "redis" && round == 1)
			gw.stop()
			if err != nil {
				return fmt.Errorf("%s: %w (gateway log: %s)", backend, err, gw.log)
			}
			r.name, r.round = map[string]string{"memory": "embedded (memory + bbolt)", "redis": "redis"}[backend], round
			rows = append(rows, r)
		}
	}
	report(out, o, rows)
	return nil
}

func measure(ctx context.Context, o options, rdb *redis.Client, gw *gateway, tok string, isRedis bool) (row, error) {
	l := newLoader("http://"+gw.caller+"/vendor/v1/items/42", tok, o.conns)
	l.run(o.conns, o.warmup, nil)
	before, err := redisInfo(ctx, rdb)
	if err != nil {
		return row{}, err
	}
	r := row{peak: l.closed(o.conns, 0, o.window)}
	after, err := redisInfo(ctx, rdb)
	if err != nil {
		return row{}, err
	}
	if r.peak.Errors > 0 {
		return row{}, fmt.Errorf("%d errors at peak, first: %s", r.peak.Errors, r.peak.FirstError)
	}
	if isRedis {
		c := &redisCost{}
		n := float64(r.peak.Requests)
		c.cmdsPerReq = float64(sum(commandStats(after))-sum(commandStats(before))) / n
		c.cpuUSPerReq = (cpu(after) - cpu(before)) * 1e6 / n
		time.Sleep(1500 * time.Millisecond) // the usage writer flushes every second
		if c.bytesPerRecord, err = usageBytes(ctx, rdb); err != nil {
			return row{}, err
		}
		if c.tripsPerReq, err = calibrate(o, l, rdb); err != nil {
			return row{}, err
		}
		idle, err := monitor(o.redisAddr, o.idle, func() {})
		if err != nil {
			return row{}, err
		}
		c.idlePerSec = perUnit(roundTrips(idle), o.idle.Seconds())
		r.redis = c
	}
	r.fixed = l.open(o.rate, 64, o.window)
	return r, nil
}

func redisInfo(ctx context.Context, rdb *redis.Client) (string, error) {
	return rdb.Info(ctx, "commandstats", "cpu").Result()
}

func sum(m map[string]int64) (n int64) {
	for k, v := range m {
		if k != "info" { // our own probes
			n += v
		}
	}
	return n
}

func cpu(info string) float64 {
	u, _ := infoField(info, "used_cpu_user")
	s, _ := infoField(info, "used_cpu_sys")
	return u + s
}

// usageBytes is Redis memory per stored usage record: all keys but the
// usage set are tiny, so used_memory over the set's size is close.
func usageBytes(ctx context.Context, rdb *redis.Client) (float64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	mem, _ := infoField(info, "used_memory")
	base, _ := infoField(info, "used_memory_startup")
	n, err := rdb.ZCard(ctx, "portcullis:usage").Result()
	if err != nil || n == 0 {
		return 0, fmt.Errorf("usage records in Redis: %d (%v)", n, err)
	}
	return (mem - base) / float64(n), nil
}

// calibrate counts, with MONITOR, the round trips of sequential calls.
func calibrate(o options, l *loader, rdb *redis.Client) (map[string]float64, error) {
	var callErr error
	lines, err := monitor(o.redisAddr, 0, func() {
		for range o.calibrate {
			if err := l.one(context.Background()); err != nil && callErr == nil {
				callErr = err
			}
		}
		time.Sleep(1100 * time.Millisecond) // the last usage batch
	})
	if err = errors.Join(err, callErr); err != nil {
		return nil, err
	}
	return perUnit(roundTrips(lines), float64(o.calibrate)), nil
}

func perUnit(m map[string]int, n float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		out[k] = float64(v) / n
	}
	return out
}

// monitor runs `redis-cli monitor` while work runs (and then for extra),
// and returns the lines it printed.
func monitor(addr string, extra time.Duration, work func()) ([]string, error) {
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("redis-cli", "-h", host, "-p", port, "monitor")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("redis-cli monitor: %w", err)
	}
	lines, done := []string{}, make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
	}()
	time.Sleep(300 * time.Millisecond) // MONITOR is on
	work()
	time.Sleep(extra)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	<-done
	_ = cmd.Wait()
	return lines, nil
}

func startUpstream() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	body := []byte(`{"id":"item_42","object":"item","amount":1999,"currency":"eur","status":"ok"}` + "\n")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln, nil
}

// gateway is one `portcullis serve` child process.
type gateway struct {
	cmd           *exec.Cmd
	caller, admin string
	log           string
}

const gatewayConfig = `version: 1
server: {listen: "%[1]s", admin_listen: "%[2]s", shutdown_grace: 2s}
state: {backend: %[3]s, redis_url: "redis://%[4]s/0", data_dir: "%[5]s"}
log: {level: info, format: json}
callers:
  bench: {tokens: ["%[6]s"]}
integrations:
  vendor:
    upstream: http://%[7]s
    egress: {allow: ["%[7]s"], allow_private: true}
    timeouts: {connect: 2s, request: 10s}
    # global: one shared GCRA check per call; high enough never to refuse.
    rate_limit: {rate: 1000000/s, burst: 100000, global: true}
    limits: {max_concurrent: 10000}
    routes:
      - {method: GET, path: "/v1/items/{id}", callers: [bench]}
`

func startGateway(o options, backend, upstream, hash string) (*gateway, error) {
	caller, admin := freePort(), freePort()
	data := filepath.Join(o.dir, "data-"+backend)
	_ = os.RemoveAll(data)
	cfg := filepath.Join(o.dir, backend+".yaml")
	text := fmt.Sprintf(gatewayConfig, caller, admin, backend, o.redisAddr, data, hash, upstream)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		return nil, err
	}
	g := &gateway{caller: caller, admin: admin, log: filepath.Join(o.dir, backend+".log")}
	logf, err := os.Create(g.log)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	args := []string{o.bin, "serve", "--config", cfg}
	if o.gatewayCPU != "" {
		args = append([]string{"taskset", "-c", o.gatewayCPU}, args...)
	}
	g.cmd = exec.Command(args[0], args[1:]...)
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	if o.gatewayCPU != "" {
		g.cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	}
	if err := g.cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return g, nil
			}
		}
	}
	g.stop()
	return nil, fmt.Errorf("gateway (%s) not ready after 20s; log: %s", backend, g.log)
}

func (g *gateway) stop() {
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	_ = g.cmd.Wait()
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func report(out io.Writer, o options, rows []row) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000) }
	fmt.Fprintf(out, "\nState backends, rate_limit.global on (peak: %d connections, %s; fixed rate: %.0f req/s, %s; %d rounds)\n\n",
		o.conns, o.window, o.rate, o.window, o.rounds)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "backend\tround\tpeak req/s\tpeak p50 ms\tpeak p99 ms\tfixed p50 ms\tfixed p99 ms\tadded p50 ms\tadded p99 ms\t")
	base := map[int]result{}
	byName := map[string][]row{}
	var names []string
	for _, r := range rows {
		if r.round == 1 {
			names = append(names, r.name)
		}
		if _, ok := base[r.round]; !ok {
			base[r.round] = r.fixed // the direct row opens each round
		}
		byName[r.name] = append(byName[r.name], r)
	}
	line := func(name, round string, peak float64, d ...time.Duration) {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t", name, round, peak)
		for _, v := range d {
			fmt.Fprintf(tw, "%s\t", ms(v))
		}
		fmt.Fprintln(tw)
	}
	for _, name := range names {
		for _, r := range byName[name] {
			b := base[r.round]
			line(name, fmt.Sprint(r.round), r.peak.RPS, r.peak.P50, r.peak.P99, r.fixed.P50, r.fixed.P99, r.fixed.P50-b.P50, r.fixed.P99-b.P99)
		}
	}
	// Medians, column by column; added is the median of the per-round differences.
	for _, name := range names {
		rs := byName[name]
		med := func(f func(r row) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		dur := func(f func(r row) time.Duration) time.Duration {
			return time.Duration(med(func(r row) float64 { return float64(f(r)) }))
		}
		line(name, "median", med(func(r row) float64 { return r.peak.RPS }),
			dur(func(r row) time.Duration { return r.peak.P50 }), dur(func(r row) time.Duration { return r.peak.P99 }),
			dur(func(r row) time.Duration { return r.fixed.P50 }), dur(func(r row) time.Duration { return r.fixed.P99 }),
			dur(func(r row) time.Duration { return r.fixed.P50 - base[r.round].P50 }),
			dur(func(r row) time.Duration { return r.fixed.P99 - base[r.round].P99 }))
	}
	tw.Flush()
	fmt.Fprintln(out, "\nadded = fixed-rate latency through the gateway minus calling the upstream directly in the same round;")
	fmt.Fprintln(out, "median rows: the median of each column over the rounds.")
	for _, r := range rows {
		c := r.redis
		if c == nil {
			continue
		}
		fmt.Fprintf(out, "\nRedis, per request at peak: %.2f commands executed (INFO commandstats, scripts' inner commands included), %.1f µs of Redis CPU\n",
			c.cmdsPerReq, c.cpuUSPerReq)
		fmt.Fprintf(out, "Redis memory per usage record: %.0f bytes (used_memory over ZCARD of the usage set)\n", c.bytesPerRecord)
		fmt.Fprintf(out, "Round trips per request (MONITOR, %d sequential calls, client commands only):\n", o.calibrate)
		total := 0.0
		for _, k := range sortedKeys(c.tripsPerReq) {
			fmt.Fprintf(out, "  %-28s %.3f\n", k, c.tripsPerReq[k])
			total += c.tripsPerReq[k]
		}
		fmt.Fprintf(out, "  %-28s %.3f\n", "total", total)
		fmt.Fprintf(out, "Round trips per second of one idle replica (MONITOR, %s, no traffic):\n", o.idle)
		for _, k := range sortedKeys(c.idlePerSec) {
			fmt.Fprintf(out, "  %-28s %.2f\n", k, c.idlePerSec[k])
		}
	}
	fmt.Fprintln(out, strings.Repeat("-", 20))
}
