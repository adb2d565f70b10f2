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
