package audit

import "github.com/portcullis-dev/portcullis/internal/conf"

// Finding ids.
const (
	CredentialTooOld    = "AU001"
	CredentialAgeUnkown = "AU002"
	CredentialUnused    = "AU003"
	CallerUnused        = "AU004"
	RouteGrantUnused    = "AU005"
	ScopeUnused         = "AU006"
	ScopeNotRequested   = "AU007"
	NoUsageData         = "AU009"
	CertExpired         = "AU010"
	CertExpiring        = "AU011"
	CertMissing         = "AU012"
	PentestStale        = "AU013"
	NoBreachProcess     = "AU014"
	PolicyMissing       = "AU015"
	NoRotationGuidance  = "AU016"
	ContractGap         = "AU017"
	ReviewOverdue       = "AU018"
	NoOwner             = "AU019"
	NoVendorRecord      = "AU020"
	SLAUptimeBreach     = "AU030"
	SLALatencyBreach    = "AU031"
)

// Finding is one thing the audit wants someone to act on.
type Finding struct {
	ID       string        `json:"id"`
	Severity conf.Severity `json:"severity"`
	// Subject names what the finding is about: "payments credential",
	// "caller billing", "sms vendor".
	Subject string `json:"subject"`
	// Path and Line locate it in the config (0 when not from the config).
	Path    string `json:"path,omitempty"`
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}
