package config

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

type validator struct {
	cfg      *Config
	problems []Problem
}

func (v *validator) add(sev Severity, code conf.Code, path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Severity: sev, Code: code, Path: path, Line: v.cfg.Line(path), Msg: fmt.Sprintf(format, args...)})
}
func (v *validator) errf(path, format string, args ...any) { v.add(Error, "", path, format, args...) }
func (v *validator) warnf(path, format string, args ...any) {
	v.add(Warning, "", path, format, args...)
}

// errc and warnc record a problem of a kind lint reports under its own id.
func (v *validator) errc(code conf.Code, path, format string, args ...any) {
	v.add(Error, code, path, format, args...)
}
func (v *validator) warnc(code conf.Code, path, format string, args ...any) {
	v.add(Warning, code, path, format, args...)
}

// adopt takes the problems a component Spec's Validate recorded (paths
// already prefixed with the Spec's config path) and gives each the line
// its path came from.
func (v *validator) adopt(r *conf.Report) {
	for _, p := range r.Problems() {
		if p.Line == 0 {
			p.Line = v.cfg.Line(p.Path)
		}
		v.problems = append(v.problems, p)
	}
}

type scalarErr interface{ ScalarError() (int, error) }

var scalarIface = reflect.TypeOf((*scalarErr)(nil)).Elem()

// scalars reports every Duration, Size, Rate, Date and SecretRef that failed
// to parse, walking the structs by their yaml tags to name each path.
func (v *validator) scalars(rv reflect.Value, path string) {
	if rv.Type().Implements(scalarIface) {
		if line, err := rv.Interface().(scalarErr).ScalarError(); err != nil {
			p := Problem{Path: path, Line: line, Msg: err.Error()}
			if errors.Is(err, conf.ErrPlainSecret) {
				p.Code = conf.PlainSecret
			}
			v.problems = append(v.problems, p)
		}
		return
	}
	join := func(name string) string {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	switch rv.Kind() {
	case reflect.Pointer:
		if !rv.IsNil() {
			v.scalars(rv.Elem(), path)
		}
	case reflect.Struct:
		t := rv.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if tag == "" || tag == "-" || !f.IsExported() {
				continue
			}
			v.scalars(rv.Field(i), join(tag))
		}
	case reflect.Map:
		keys := rv.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			v.scalars(rv.MapIndex(k), join(k.String()))
		}
	case reflect.Slice:
		for i := 0; i < rv.Len(); i++ {
			v.scalars(rv.Index(i), path+"["+strconv.Itoa(i)+"]")
		}
	}
}

var (
	reName   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	reToken  = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	reHeader = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	reMethod = regexp.MustCompile(`^[A-Z]+$`)
)

// forbiddenRequestHeaders can never be forwarded from a caller: they carry
// the caller's own credential, cookies, or connection-level meaning.
var forbiddenRequestHeaders = map[string]bool{
	"Authorization": true, "Proxy-Authorization": true, "Cookie": true, "Host": true,
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Content-Length": true,
	"X-Http-Method-Override": true, "X-Http-Method": true, "X-Method-Override": true,
	"Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Real-Ip": true,
}

// maxRedisTimeout caps state.redis_timeout: longer, a Redis outage would
// hold every call for longer than most callers' own timeouts.
const maxRedisTimeout = 10 * time.Second

func (v *validator) validate() {
	c := v.cfg
	if c.Version != 1 {
		v.errf("version", "must be 1 (got %d)", c.Version)
	}
	v.listen("server.listen", c.Server.Listen)
	v.listen("server.admin_listen", c.Server.AdminListen)
	if c.Server.WebhookListen != "" {
		v.listen("server.webhook_listen", c.Server.WebhookListen)
	} else if len(c.Webhooks) > 0 {
		v.errf("server.webhook_listen", "webhooks are configured but server.webhook_listen is not set")
	}
	v.listenerLimits()
	if !c.Server.AdminToken.IsSet() {
		v.warnc(conf.NoAdminToken, "server.admin_token", "no admin token: the admin API (/metrics, /api/v1, /ui/) refuses everything but /healthz and /readyz")
	}
	if t := c.Server.TLS; t != nil {
		if t.Cert == "" || t.Key == "" {
			v.errf("server.tls", "needs both cert and key")
		}
	}
	if ca := c.Server.InspectCA; ca != nil {
		r := conf.NewReport("server.inspect_ca")
		ca.Validate(r)
		v.adopt(r)
	}
	switch c.State.Backend {
	case "memory":
	case "redis":
		if c.State.RedisURL == "" {
			v.errf("state.redis_url", "required when state.backend is redis")
		} else if u, err := url.Parse(c.State.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			v.errf("state.redis_url", "must be redis://host:port/db, rediss:// or unix://")
		}
	default:
		v.errf("state.backend", "must be memory or redis (got %q)", c.State.Backend)
	}
	if _, perr := c.State.RedisTimeout.ScalarError(); perr == nil && (c.State.RedisTimeout.D < time.Millisecond || c.State.RedisTimeout.D > maxRedisTimeout) {
		d := c.State.RedisTimeout.D
		v.errf("state.redis_timeout", "must be between 1ms and %s (got %s): it bounds how long a Redis outage holds up each call", maxRedisTimeout, d)
	}
	if d := c.State.OnRedisDown; d != nil {
		for k, val := range map[string]string{"rate_limit": d.RateLimit, "replay": d.Replay} {
			if val != "" && val != "fail_open" && val != "fail_closed" {
				v.errf("state.on_redis_down."+k, "must be fail_open or fail_closed")
			}
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.errf("log.level", "must be debug, info, warn or error")
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		v.errf("log.format", "must be json or text")
	}
	v.callers()
	for _, name := range sortedKeys(c.Integrations) {
		v.integration(name, c.Integrations[name])
	}
	if len(c.Integrations) == 0 {
		v.warnf("integrations", "no integrations: the gateway will refuse every call")
	}
	v.webhooks()
	if t := c.Tracing; t.OTLPEndpoint != "" {
		v.url("tracing.otlp_endpoint", t.OTLPEndpoint, true)
	}
	v.gatewayEgress()
	if r := c.Tracing.SampleRatio; r < 0 || r > 1 {
		v.errf("tracing.sample_ratio", "must be between 0 and 1")
	}
	for i, s := range c.Alerts.Sinks {
		p := fmt.Sprintf("alerts.sinks[%d]", i)
		if s == nil {
			v.errf(p, "empty sink")
			continue
		}
		switch s.Type {
		case "log":
		case "webhook":
			v.url(p+".url", s.URL, true)
			if s.Format != "" && s.Format != "json" && s.Format != "slack" {
				v.errf(p+".format", "must be json or slack")
			}
		default:
			v.errf(p+".type", "must be log or webhook")
		}
	}
}

func (v *validator) listen(path, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.errf(path, "must be host:port (got %q)", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.errf(path, "bad port %q", port)
	}
	_ = host
}

func (v *validator) callers() {
	seen := map[string]string{}
	for _, name := range sortedKeys(v.cfg.Callers) {
		c := v.cfg.Callers[name]
		p := "callers." + name
		if !reName.MatchString(name) {
			v.errf(p, "caller name must be lower-case letters, digits, _ and - (max 63)")
		}
		if c == nil || len(c.Tokens) == 0 && len(c.MTLSSubjects) == 0 {
			v.warnc(conf.CallerUnreachable, p, "caller has neither tokens nor mtls_subjects, so it can never authenticate")
			continue
		}
		for i, t := range c.Tokens {
			tp := fmt.Sprintf("%s.tokens[%d]", p, i)
			if !reToken.MatchString(t) {
				// Never echo it: a raw token pasted here is a secret.
				v.errc(conf.PlainSecret, tp, "must be a token hash \"sha256:<64 hex>\" from `portcullis token new`, not a raw token")
				continue
			}
			if other, ok := seen[t]; ok && other != name {
				v.errc(conf.SharedIdentity, tp, "the same token hash is also given to caller %q: each caller needs its own token", other)
			}
			seen[t] = name
		}
		for i, s := range c.MTLSSubjects {
			if strings.TrimSpace(s) == "" {
				v.errf(fmt.Sprintf("%s.mtls_subjects[%d]", p, i), "empty subject")
			}
		}
	}
}

func (v *validator) integration(name string, in *Integration) {
	p := "integrations." + name
	if !reName.MatchString(name) {
		v.errf(p, "integration name must be lower-case letters, digits, _ and - (it is the first path segment)")
	}
	if name == "jobs" {
		v.errf(p, `"jobs" is reserved: GET /jobs/{id} serves queued calls; pick another name`)
	}
	if in == nil {
		v.errf(p, "empty integration")
		return
	}
	up := v.url(p+".upstream", in.Upstream, false)
	r := conf.NewReport(p)
	in.Egress.Validate(r.At("egress"))
	v.adopt(r)
	if up != nil {
		if up.Scheme == "http" {
			v.warnc(conf.PlainHTTP, p+".upstream", "plain http: the credential and data cross the network unencrypted")
		}
		port := up.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[up.Scheme]
		}
		if len(in.Egress.Allow) > 0 && !hostOnAllow(up.Hostname(), port, in.Egress.Allow) {
			v.errf(p+".upstream", "host %s:%s is not on egress.allow, so no call could ever leave: add it to egress.allow", up.Hostname(), port)
		}
	}
	r = conf.NewReport(p)
	in.Timeouts.Validate(r.At("timeouts"))
	in.Credential.Validate(r.At("credential"))
	v.adopt(r)
	for i, h := range in.RequestHeaders {
		hp := fmt.Sprintf("%s.request_headers[%d]", p, i)
		if !reHeader.MatchString(h) {
			v.errf(hp, "not a valid header name")
			continue
		}
		if forbiddenRequestHeaders[http.CanonicalHeaderKey(h)] || strings.HasPrefix(http.CanonicalHeaderKey(h), "Proxy-") {
			v.errf(hp, "%s can never be forwarded from a caller (caller credentials, cookies and hop-by-hop headers are always stripped)", http.CanonicalHeaderKey(h))
		}
	}
	v.routes(p, in.Routes)
	r = conf.NewReport(p)
	in.Retry.Validate(r.At("retry"))
	in.CircuitBreaker.Validate(r.At("circuit_breaker"))
	in.RateLimit.Validate(r.At("rate_limit"))
	in.Limits.Validate(r.At("limits"))
	in.Validate.Validate(r.At("validate"))
	in.Fallback.Validate(r.At("fallback"))
	v.adopt(r)
	if px := in.Proxy; px != nil {
		r := conf.NewReport(p)
		px.Validate(r.At("proxy"))
		v.adopt(r)
		if px.Inspect && up != nil && up.Scheme != "https" {
			v.errf(p+".proxy.inspect", "needs an https:// upstream: an inspected tunnel reaches only the upstream's host:port, over verified TLS")
		}
		if px.Inspect && v.cfg.Server.InspectCA == nil {
			v.errf(p+".proxy.inspect", "needs server.inspect_ca: the CA that signs the certificates presented inside the tunnel (make one with `portcullis ca new`)")
		}
		for i, c := range px.ConnectCallers {
			if _, ok := v.cfg.Callers[c]; !ok {
				v.errf(fmt.Sprintf("%s.proxy.connect_callers[%d]", p, i), "unknown caller %q", c)
			}
		}
	}
}

func (v *validator) url(path, raw string, allowHTTP bool) *url.URL {
	r := conf.NewReport("")
	u := conf.HTTPURL(r, path, raw)
	v.adopt(r)
	return u
}

func hostOnAllow(host, port string, allow []string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, a := range allow {
		h, pt, err := net.SplitHostPort(a)
		if err != nil || pt != port {
			continue
		}
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if h == host {
			return true
		}
		if suf, ok := strings.CutPrefix(h, "*"); ok && strings.HasSuffix(host, suf) && len(host) > len(suf) {
			return true
		}
	}
	return false
}

func (v *validator) routes(p string, routes []*Route) {
	if len(routes) == 0 {
		v.warnf(p+".routes", "no routes: every call to this integration is refused (deny by default)")
	}
	seen := map[string]int{}
	for i, r := range routes {
		rp := fmt.Sprintf("%s.routes[%d]", p, i)
		if r == nil {
			v.errf(rp, "empty route")
			continue
		}
		if !reMethod.MatchString(r.Method) {
			v.errf(rp+".method", "must be an upper-case HTTP method such as GET or POST")
		}
		if !strings.HasPrefix(r.Path, "/") {
			v.errf(rp+".path", "must start with /")
		} else if err := checkTemplate(r.Path); err != nil {
			v.errf(rp+".path", "%v", err)
		}
		key := r.Method + " " + r.Path
		if j, ok := seen[key]; ok {
			v.errf(rp, "duplicate of routes[%d] (%s)", j, key)
		}
		seen[key] = i
		if len(r.Callers) == 0 {
			v.errf(rp+".callers", "no callers: list who may use this route")
		}
		for j, c := range r.Callers {
			if _, ok := v.cfg.Callers[c]; !ok {
				v.errf(fmt.Sprintf("%s.callers[%d]", rp, j), "unknown caller %q (define it under callers:)", c)
			}
		}
	}
}

// checkTemplate is the config-time shape check; policy.Compile is the
// authority and runs at compile time too.
func checkTemplate(t string) error {
	if t == "/" {
		return nil
	}
	params := map[string]bool{}
	for _, seg := range strings.Split(t[1:], "/") {
		switch {
		case seg == "":
			return fmt.Errorf("empty segment (// or trailing /) in path template")
		case seg == "." || seg == "..":
			return fmt.Errorf("dot segment in path template")
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"):
			name := seg[1 : len(seg)-1]
			if !reName.MatchString(strings.ToLower(name)) {
				return fmt.Errorf("bad parameter name {%s}", name)
			}
			if params[name] {
				return fmt.Errorf("parameter {%s} used twice", name)
			}
			params[name] = true
		case strings.ContainsAny(seg, "{}%\\?#"):
			return fmt.Errorf("segment %q: parameters must be whole segments like {id}, and no %%, \\, ? or #", seg)
		}
	}
	return nil
}

func (v *validator) webhooks() {
	paths := map[string]string{}
	for _, name := range sortedKeys(v.cfg.Webhooks) {
		w := v.cfg.Webhooks[name]
		p := "webhooks." + name
		r := conf.NewReport(p)
		w.Validate(r)
		v.adopt(r)
		if w == nil {
			continue
		}
		if other, ok := paths[w.Path]; ok && strings.HasPrefix(w.Path, "/") {
			v.errf(p+".path", "same path as webhook %q", other)
		}
		paths[w.Path] = name
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Names returns the integration names in order.
func (c *Config) Names() []string { return sortedKeys(c.Integrations) }
