package validate

import "github.com/portcullis-dev/portcullis/internal/conf"

// ConfigSpec is an integration's validate: block: its vendor responses
// are checked against an OpenAPI document. (Spec is the loaded document.)
type ConfigSpec struct {
	// OpenAPI is the spec file, relative to the config file. Required
	// unless Mode is off.
	OpenAPI string `yaml:"openapi"`
	// Mode is enforce (fail closed), report (pass and record) or off.
	// Default enforce.
	Mode Mode `yaml:"mode"`
	// MaxDepth bounds JSON nesting before a body is refused. Default 64.
	MaxDepth int `yaml:"max_depth"`
}

// Provision fills what the file left out.
func (s *ConfigSpec) Provision() {
	if s == nil {
		return
	}
	if s.Mode == "" {
		s.Mode = ModeEnforce
	}
	if s.MaxDepth == 0 {
		s.MaxDepth = DefaultMaxDepth
	}
}

// Validate records the problems of a provisioned ConfigSpec, with paths
// relative to the validate block.
func (s *ConfigSpec) Validate(r *conf.Report) {
	if s == nil {
		return
	}
	switch s.Mode {
	case ModeEnforce, ModeReport:
		if s.OpenAPI == "" {
			r.Errorf("openapi", "required when validate.mode is %s", s.Mode)
		}
	case ModeOff:
	default:
		r.Errorf("mode", "must be enforce, report or off")
	}
	if s.MaxDepth < 0 {
		r.Errorf("max_depth", "must not be negative")
	}
}
