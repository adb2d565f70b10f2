// Package lint owns `portcullis check`: it loads a config with
// config.Parse (every validation error and warning), compiles it the way
// the gateway would, and adds security findings of its own — plain-text
// secrets, wildcard or IP egress, private egress, plain-http upstreams,
// integrations without timeouts, breaker, rate limit or response
// validation, routes open to every caller, writes to vendors holding pii or
// payment data without a justification, identities shared by callers,
// credentials without max_age, chaos left on. Each finding has a stable id
// (PC001…), a severity, the config path and line, and the fix.
//
// Output is text (one `file:LINE: severity: path: message [ID]` line per
// finding, then the fix), JSON, or SARIF 2.1.0 for code-scanning systems.
// Exit status: 0 when there are no errors (warnings and info allowed), 1
// on any error — or any warning with --strict — and 2 for bad usage.
package lint
