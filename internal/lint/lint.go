package lint

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/identity"
	"github.com/portcullis-dev/portcullis/internal/policy"
)

// Finding is one problem found in a config.
type Finding struct {
	ID       conf.Code
	Severity conf.Severity
	// Path is the config path, e.g. integrations.payments.egress.allow[0].
	Path string
	// Line in the config file; 0 when unknown.
	Line    int
	Message string
	// Fix says how to resolve it.
	Fix string
}

// Report is every finding about one config file.
type Report struct {
	File     string
	Findings []Finding
}

// Counts returns how many findings have each severity.
func (r Report) Counts() (errs, warnings, infos int) {
	for _, f := range r.Findings {
		switch f.Severity {
		case conf.Error:
			errs++
		case conf.Warning:
			warnings++
		default:
			infos++
		}
	}
	return errs, warnings, infos
}

// Check lints the config file named file whose content is data: config
// validation (errors and warnings), compilation, and the security rules.
func Check(file string, data []byte) Report {
	cfg, problems, _ := config.Parse(file, data)
	c := &checker{cfg: cfg, reported: map[string]bool{}}
	hasErrors := false
	for _, p := range problems {
		c.fromProblem(p)
		hasErrors = hasErrors || p.Severity == conf.Error
	}
	if cfg != nil {
		var root yaml.Node
		if yaml.Unmarshal(data, &root) == nil {
			c.secrets(&root)
		}
		c.rules()
		if !hasErrors {
			c.compile()
		}
	}
	slices.SortStableFunc(c.findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(b.Severity, a.Severity), cmp.Compare(a.Line, b.Line), cmp.Compare(a.ID, b.ID), cmp.Compare(a.Path, b.Path))
	})
	return Report{File: file, Findings: c.findings}
}

type checker struct {
	cfg      *config.Config
	findings []Finding
	// reported holds the paths config validation already reported, so a
	// rule never says the same thing twice about one value.
	reported map[string]bool
}

func (c *checker) add(id conf.Code, path, fix, format string, args ...any) {
	r := ruleByID(id)
	if fix == "" {
		fix = r.Fix
	}
	c.findings = append(c.findings, Finding{ID: id, Severity: r.Severity, Path: path, Line: c.cfg.Line(path),
		Message: fmt.Sprintf(format, args...), Fix: fix})
}

// fromProblem turns a config validation problem into a finding under the
// code it was raised with (conf.ConfigInvalid when it has none).
func (c *checker) fromProblem(p config.Problem) {
	id := cmp.Or(p.Code, conf.ConfigInvalid)
	fix := ""
	if id != conf.ConfigInvalid {
		fix = ruleByID(id).Fix
	}
	// The config's own severity stands: an error there is an error here.
	c.findings = append(c.findings, Finding{ID: id, Severity: p.Severity, Path: p.Path, Line: p.Line, Message: p.Msg, Fix: fix})
	// A URL off an allowlist may also carry a secret: that is a second
	// problem with the same value, so leave it to the secret rules.
	if p.Path != "" && id != conf.InternalNotAllowed && id != conf.TokenURLOffEgress {
		c.reported[p.Path] = true
	}
}

// compile builds what the gateway builds at start (caller identities,
// route tables, egress policies) and reports what fails, as
// gateway.Validate does for `portcullis serve`.
func (c *checker) compile() {
	if _, err := identity.New(c.cfg.Callers); err != nil {
		c.add(conf.ConfigInvalid, "callers", "", "%v", err)
	}
	for _, name := range c.cfg.Names() {
		in := c.cfg.Integrations[name]
		if in == nil {
			continue
		}
		p := "integrations." + name
		routes := make([]policy.Route, 0, len(in.Routes))
		for _, r := range in.Routes {
			if r != nil {
				routes = append(routes, policy.Route{Method: r.Method, Path: r.Path, Callers: r.Callers})
			}
		}
		if _, err := policy.Compile(routes); err != nil {
			c.add(conf.ConfigInvalid, p+".routes", "", "%v", err)
		}
		if _, err := in.Egress.Policy(in.Timeouts, nil); err != nil {
			c.add(conf.ConfigInvalid, p+".egress", "", "%v", err)
		}
	}
	if _, err := egress.NewInternalPolicy(c.cfg.InternalEgress.Allow, nil); err != nil {
		c.add(conf.InternalEgressEntry, "internal_egress.allow", "", "%v", err)
	}
	c.inspectCA(time.Now())
}

// inspectCAWarn is how long before the inspect CA's expiry check warns:
// time for clients to learn to trust the next one.
const inspectCAWarn = 30 * 24 * time.Hour

// inspectCA loads server.inspect_ca.cert (not the key: it is a secret,
// read by --resolve-secrets and serve) and says what makes it unusable,
// or that it expires soon.
func (c *checker) inspectCA(now time.Time) {
	s := c.cfg.Server.InspectCA
	if s == nil {
		return
	}
	const p = "server.inspect_ca.cert"
	ca, err := s.CheckCert(now)
	if err != nil {
		c.add(conf.ConfigInvalid, p, "", "%v", err)
		return
	}
	if left := ca.NotAfter.Sub(now); left < inspectCAWarn {
		c.add(conf.InspectCAExpiring, p, "", "the inspect CA %q expires in %d days (%s): after that serve refuses the config and inspected tunnels stop",
			ca.Subject.String(), int(left.Hours()/24), ca.NotAfter.UTC().Format(time.DateOnly))
	}
}
