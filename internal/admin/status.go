package admin

import (
	"time"

	"github.com/portcullis-dev/portcullis/internal/credential"
)

// IntegrationList is the body of GET /api/v1/integrations.
type IntegrationList struct {
	Integrations []Integration `json:"integrations"`
}

// Integration is one row of IntegrationList, sorted by name.
type Integration struct {
	Name     string `json:"name"`
	Upstream string `json:"upstream"` // redacted: no userinfo
	Routes   int    `json:"routes"`
	Status   Status `json:"status"`
}

// Status is an integration's runtime state. The fields are in the order of
// their JSON names, as the admin API has always listed them.
type Status struct {
	Breaker       string        `json:"breaker"` // closed, half-open, open
	BreakerDetail BreakerDetail `json:"breaker_detail"`
	// Credential is the credential's state, nil when the integration has
	// none (or the gateway runs without credential injection).
	Credential  *credential.Status `json:"credential,omitempty"`
	Disabled    bool               `json:"disabled"` // the kill switch is on
	InFlight    int                `json:"in_flight"`
	Limiter     Limiter            `json:"limiter"`
	MaxInFlight int                `json:"max_in_flight"`
	RetryBudget Budget             `json:"retry_budget"`
}

// BreakerDetail is the circuit breaker's current window.
type BreakerDetail struct {
	Failures uint32    `json:"failures"` // failures among Requests
	Requests uint32    `json:"requests"` // calls in the window (closed) or probe round (half-open)
	Since    time.Time `json:"since"`    // when the breaker entered its state
}

// Limiter is the rate limiter's state.
type Limiter struct {
	Burst           int       `json:"burst"`
	PausedUntil     time.Time `json:"paused_until"` // zero when not paused
	Rate            float64   `json:"rate"`         // calls/s, 0 when none
	Refused         int64     `json:"refused"`      // calls refused since start
	Tokens          float64   `json:"tokens"`
	VendorRemaining int64     `json:"vendor_remaining"` // -1 unknown
	VendorReset     time.Time `json:"vendor_reset"`     // zero unknown
}

// Budget is the retry budget's current window. Its JSON names are
// capitalised: the admin API has always sent them so.
type Budget struct {
	Requests int64   `json:"Requests"` // first attempts in the window
	Retries  int64   `json:"Retries"`  // retries spent in the window
	Allowed  float64 `json:"Allowed"`  // the retries the window allows
}
