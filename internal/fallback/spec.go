package fallback

import "github.com/portcullis-dev/portcullis/internal/conf"

// Spec is an integration's fallback: block: what the gateway serves when
// the vendor fails.
type Spec struct {
	// StaleFor serves the last good GET response for this long after a
	// failure (needs a state store). Default 0: no stale answers.
	StaleFor conf.Duration `yaml:"stale_for"`
	// ShareStale lets callers share cached responses. Default false: each
	// caller sees only its own.
	ShareStale bool `yaml:"share_stale"`
	// Queue accepts `Prefer: respond-async` calls durably when the vendor
	// is down, on routes with queue: true. Default false.
	Queue bool `yaml:"queue"`
	// QueueAlways queues every respond-async call, vendor up or not; needs
	// Queue. Default false.
	QueueAlways bool `yaml:"queue_always"`
}

// Provision fills what the file left out: every default is the zero value.
func (s *Spec) Provision() {}

// Validate records the problems of s, with paths relative to the fallback
// block.
func (s *Spec) Validate(r *conf.Report) {
	if s == nil {
		return
	}
	if s.QueueAlways && !s.Queue {
		r.Errorf("queue_always", "needs fallback.queue: true")
	}
	if s.StaleFor.D < 0 {
		r.Errorf("stale_for", "must not be negative")
	}
}
