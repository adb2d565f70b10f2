package chaos

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/config"
)

// Kind is what a fault does to a call.
type Kind string

// The fault kinds.
const (
	// Latency delays the call by Fault.Latency, then lets it through.
	Latency Kind = "latency"
	// ErrorStatus answers Fault.Status (default 503) without calling the vendor.
	ErrorStatus Kind = "error"
	// Reset fails the call with a connection reset, as if the vendor's
	// side dropped the TCP connection.
	Reset Kind = "reset"
	// Hang never answers: the call blocks until the caller's context ends
	// (a network partition).
	Hang Kind = "hang"
	// Truncate delivers the first half of the vendor's body, then an
	// unexpected EOF; Content-Length still announces the whole body.
	Truncate Kind = "truncate"
	// Corrupt flips bytes of the vendor's body (same length).
	Corrupt Kind = "corrupt"
	// Oversize pads the vendor's body with Fault.Size bytes of whitespace
	// (default 64 MiB), streamed, to exercise response size limits.
	Oversize Kind = "oversize"
	// Schema breaks the body's shape: every top-level JSON field gets a
	// different type, and anything else becomes {"unexpected":true}.
	Schema Kind = "schema"
	// Revoked answers 401 invalid_token, as a vendor does for a revoked key.
	Revoked Kind = "revoked"
)

// Kinds lists every kind, in the order documentation shows them.
var Kinds = []Kind{Latency, ErrorStatus, Reset, Hang, Truncate, Corrupt, Oversize, Schema, Revoked}

// Limits on what a fault may ask for.
const (
	// MaxLatency bounds Fault.Latency.
	MaxLatency = 10 * time.Minute
	// DefaultOversize is the padding of an oversize fault without Size.
	DefaultOversize = 64 << 20
	// MaxOversize bounds Fault.Size.
	MaxOversize = 1 << 30
	// DefaultTTL is how long a fault set through the admin API lasts when
	// the request names no duration; MaxTTL bounds it.
	DefaultTTL = 10 * time.Minute
	MaxTTL     = 24 * time.Hour
)

// Errors returned by the Injector and the admin API.
var (
	// ErrDisabled: chaos.enabled is false in the config.
	ErrDisabled = errors.New("chaos: fault injection is disabled (set chaos.enabled: true in the config, test environments only)")
	// ErrInvalid wraps every problem with a fault's fields.
	ErrInvalid = errors.New("chaos: invalid fault")
	// ErrNotFound: no fault with that id.
	ErrNotFound = errors.New("chaos: no such fault")
)

// Fault is one injected failure.
type Fault struct {
	// ID names the fault; Set assigns one ("f1", "f2", ...) when empty.
	ID string
	// Integration the fault applies to (required).
	Integration string
	// Route is a route template ("/v1/charges/{id}"); empty means every
	// route of the integration.
	Route string
	Kind  Kind
	// Probability in (0, 1] that a matching call is hit; 0 means 1.
	Probability float64
	// Latency for kind latency.
	Latency time.Duration
	// Status for kind error (default 503).
	Status int
	// Size is the padding in bytes for kind oversize (default 64 MiB).
	Size int64
	// Expires is when the fault stops; zero means never (config faults).
	Expires time.Time
	// Created is set by Set.
	Created time.Time
	// Source is "config" or "api".
	Source string
	// Injections counts calls this fault has hit (read-only, from List).
	Injections uint64
}

// Validate reports every problem with the fault's fields, joined, each
// wrapping ErrInvalid.
func (f Fault) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...)))
	}
	if strings.TrimSpace(f.Integration) == "" {
		bad("integration is required")
	}
	if f.Route != "" && !strings.HasPrefix(f.Route, "/") {
		bad("route must be a route template starting with /")
	}
	known := false
	for _, k := range Kinds {
		known = known || f.Kind == k
	}
	if !known {
		bad("kind %q: want one of %s", f.Kind, kindList())
	}
	if f.Probability < 0 || f.Probability > 1 || f.Probability != f.Probability {
		bad("probability must be between 0 and 1")
	}
	switch f.Kind {
	case Latency:
		if f.Latency <= 0 || f.Latency > MaxLatency {
			bad("kind latency needs latency between 1ms and %s", MaxLatency)
		}
	case ErrorStatus:
		if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
			bad("status must be 400..599 (default 503)")
		}
	case Oversize:
		if f.Size < 0 || f.Size > MaxOversize {
			bad("size must be at most %d bytes", MaxOversize)
		}
	}
	if f.Kind != Latency && f.Latency != 0 {
		bad("latency applies to kind latency only")
	}
	if f.Kind != ErrorStatus && f.Status != 0 {
		bad("status applies to kind error only")
	}
	return errors.Join(errs...)
}

func kindList() string {
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// FromConfig turns a chaos.faults entry into a Fault; its expires (a
// duration) counts from now. An entry without expires never expires.
func FromConfig(c *config.Fault, now time.Time) Fault {
	f := Fault{
		Integration: c.Integration, Route: c.Route, Kind: Kind(c.Kind),
		Probability: c.Probability, Latency: c.Latency.D, Status: c.Status, Source: "config",
	}
	if c.Expires.D > 0 {
		f.Expires = now.Add(c.Expires.D)
	}
	return f
}

// faultJSON is the wire form of a Fault (admin API, chaos list --format json).
type faultJSON struct {
	ID          string    `json:"id,omitempty"`
	Integration string    `json:"integration"`
	Route       string    `json:"route,omitempty"`
	Kind        Kind      `json:"kind"`
	Probability float64   `json:"probability,omitempty"`
	Latency     string    `json:"latency,omitempty"`
	Status      int       `json:"status,omitempty"`
	Size        int64     `json:"size,omitempty"`
	For         string    `json:"for,omitempty"`
	Expires     time.Time `json:"expires_at,omitzero"`
	Created     time.Time `json:"created_at,omitzero"`
	Source      string    `json:"source,omitempty"`
	Injections  uint64    `json:"injections"`
}

// MarshalJSON writes durations as Go duration text ("250ms").
func (f Fault) MarshalJSON() ([]byte, error) {
	j := faultJSON{ID: f.ID, Integration: f.Integration, Route: f.Route, Kind: f.Kind,
		Probability: f.Probability, Status: f.Status, Size: f.Size, Expires: f.Expires,
		Created: f.Created, Source: f.Source, Injections: f.Injections}
	if f.Latency > 0 {
		j.Latency = f.Latency.String()
	}
	return json.Marshal(j)
}

// Request is the body of POST /api/v1/chaos: a Fault whose lifetime is
// given as a duration ("for": "5m"; default DefaultTTL, at most MaxTTL).
type Request struct {
	Fault Fault
	TTL   time.Duration
}

// DecodeRequest parses and validates a POST /api/v1/chaos body. Unknown
// fields are errors, so a misspelt "probabilty" is not silently 1.
func DecodeRequest(data []byte) (Request, error) {
	var j faultJSON
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return Request{}, fmt.Errorf("%w: body must be a JSON fault: %w", ErrInvalid, err)
	}
	if dec.More() {
		return Request{}, fmt.Errorf("%w: body must hold one JSON object", ErrInvalid)
	}
	r := Request{Fault: Fault{ID: j.ID, Integration: j.Integration, Route: j.Route, Kind: j.Kind,
		Probability: j.Probability, Status: j.Status, Size: j.Size}, TTL: DefaultTTL}
	var errs []error
	if j.Latency != "" {
		d, err := config.ParseDuration(j.Latency)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: latency: %w", ErrInvalid, err))
		}
		r.Fault.Latency = d
	}
	if j.For != "" {
		d, err := config.ParseDuration(j.For)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%w: for: %w", ErrInvalid, err))
		case d <= 0 || d > MaxTTL:
			errs = append(errs, fmt.Errorf("%w: for must be between 1s and %s", ErrInvalid, MaxTTL))
		}
		r.TTL = d
	}
	if err := r.Fault.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Request{}, err
	}
	return r, nil
}

// statusOrDefault is the status an error fault answers.
func (f Fault) statusOrDefault() int {
	if f.Status == 0 {
		return http.StatusServiceUnavailable
	}
	return f.Status
}

// UnmarshalJSON reads the wire form MarshalJSON writes.
func (f *Fault) UnmarshalJSON(data []byte) error {
	var j faultJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*f = Fault{ID: j.ID, Integration: j.Integration, Route: j.Route, Kind: j.Kind,
		Probability: j.Probability, Status: j.Status, Size: j.Size, Expires: j.Expires,
		Created: j.Created, Source: j.Source, Injections: j.Injections}
	if j.Latency != "" {
		d, err := config.ParseDuration(j.Latency)
		if err != nil {
			return fmt.Errorf("latency: %w", err)
		}
		f.Latency = d
	}
	return nil
}
