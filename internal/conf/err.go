package conf

import "errors"

// Err returns the recorded errors (not the warnings) as one error, one
// "path: message" per line, or nil: for a constructor that validates a
// Spec given in code rather than read by the config package.
func (r *Report) Err() error {
	var errs []error
	for _, p := range *r.list {
		if p.Severity == Error {
			errs = append(errs, errors.New(p.String()))
		}
	}
	return errors.Join(errs...)
}

// Paths lists the recorded problems as "severity path" ("error allow[0]",
// "warning " for the Spec itself), in order: the shape a table test of a
// Spec's Validate compares.
func (r *Report) Paths() []string {
	var out []string
	for _, p := range *r.list {
		out = append(out, p.Severity.String()+" "+p.Path)
	}
	return out
}

// Spec is what every component's config block implements: Provision fills
// its defaults, Validate records what is wrong with it.
type Spec interface {
	Provision()
	Validate(r *Report)
}

// Check provisions s, validates it into a fresh Report and returns that
// Report's Paths: one call for a table test of a Spec.
func Check(s Spec) []string {
	r := NewReport("")
	s.Provision()
	s.Validate(r)
	return r.Paths()
}
