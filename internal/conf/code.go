package conf

// Code names the kind of a Problem or of a lint finding: the stable id
// `portcullis check` prints (PC001) and SARIF reports. Every problem is
// raised with its Code where it is found (Report.Coded, or lint's own
// rules); none is recovered from message text. The empty Code is
// ConfigInvalid: a problem that only says the config is wrong. lint owns
// each Code's name, severity, title and fix (lint.Rules).
type Code string

// The codes, by id. Gaps are ids that were retired; never reuse one.
const (
	ConfigInvalid     Code = "PC000"
	PlainSecret       Code = "PC001"
	WildcardEgress    Code = "PC002"
	IPEgress          Code = "PC003"
	PrivateEgress     Code = "PC004"
	PlainHTTP         Code = "PC005"
	NoTimeouts        Code = "PC006"
	NoBreaker         Code = "PC007"
	NoRateLimit       Code = "PC008"
	NoValidation      Code = "PC009"
	OpenRoute         Code = "PC010"
	UnjustifiedWrite  Code = "PC011"
	SharedIdentity    Code = "PC012"
	NoMaxAge          Code = "PC013"
	NoCredential      Code = "PC014"
	NoAdminToken      Code = "PC015"
	NoScopes          Code = "PC016"
	AdminExposed      Code = "PC017"
	ChaosEnabled      Code = "PC018"
	BadChaosFault     Code = "PC019"
	CallerUnreachable Code = "PC020"
	OpenProxyCIDRs    Code = "PC024"
	// PC028–PC031 are the gateway's own connections (issue 13 item 8).
	TokenURLOffEgress   Code = "PC028"
	InternalNotAllowed  Code = "PC029"
	InternalEgressEntry Code = "PC030"
	ListenerUnbounded   Code = "PC032"
	// PC034–PC037: state and fallback settings that silently do nothing.
	PerReplicaLimit           Code = "PC034"
	QueueWithoutRoutes        Code = "PC035"
	QueueRouteWithoutFallback Code = "PC036"
	// PC038: proxy inspect mode's CA.
	InspectCAExpiring Code = "PC038"
)
