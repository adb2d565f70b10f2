package sdk

import (
	"errors"
	"strings"
)

// Ecosystems, named as OSV names them.
const (
	Go   = "Go"
	NPM  = "npm"
	PyPI = "PyPI"
)

// ErrParse wraps every manifest, lock file or OSV record that cannot be read.
var ErrParse = errors.New("sdk: cannot parse")

// Dependency is one declared dependency of a service, with what its lock
// file says about it.
type Dependency struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	// Spec is the requirement as written in the manifest ("^14.0.0", ">=7").
	Spec string `json:"spec,omitempty"`
	// Version is the exact version in use: from the lock file, or from an
	// exact spec; empty when unknown.
	Version string `json:"version,omitempty"`
	// Pinned: the exact version is fixed (a lock entry or an exact spec).
	Pinned bool `json:"pinned"`
	// Integrity: a hash of the artifact is recorded (go.sum h1:, npm
	// integrity, pip --hash, poetry file hashes).
	Integrity bool `json:"integrity"`
	// Manifest is the file that declares it; Lock the lock file read, if any.
	Manifest string `json:"manifest"`
	Lock     string `json:"lock,omitempty"`
	Line     int    `json:"line,omitempty"`
}

// knownSDKs are vendor SDK package names per ecosystem; an entry ending
// in "/" or "*" matches as a prefix.
var knownSDKs = map[string][]string{
	Go: {"github.com/stripe/stripe-go", "github.com/twilio/twilio-go", "github.com/sashabaranov/go-openai",
		"github.com/openai/openai-go", "github.com/anthropics/anthropic-sdk-go", "googlemaps.github.io/maps",
		"github.com/aws/aws-sdk-go", "github.com/sendgrid/sendgrid-go", "github.com/slack-go/slack",
		"github.com/google/go-github/", "github.com/plaid/plaid-go", "github.com/braintree-go/braintree-go",
		"github.com/square/square-go-sdk", "github.com/simpleforce/simpleforce", "github.com/hubspot/"},
	NPM: {"stripe", "twilio", "openai", "@anthropic-ai/sdk", "@googlemaps/google-maps-services-js", "jsforce",
		"@sendgrid/*", "@slack/web-api", "aws-sdk", "@aws-sdk/*", "@hubspot/api-client", "plaid", "braintree",
		"square", "@octokit/rest", "@paypal/*", "@mailchimp/*", "@salesforce/*"},
	PyPI: {"stripe", "twilio", "openai", "anthropic", "googlemaps", "simple-salesforce", "sendgrid", "slack-sdk",
		"boto3", "botocore", "hubspot-api-client", "plaid-python", "braintree", "squareup", "pygithub", "paypalrestsdk"},
}

// Matcher decides which dependencies are vendor SDKs.
type Matcher struct {
	// All reports every dependency, SDK or not.
	All bool
	// Extra names more SDKs ("acme-client", "@acme/*", "github.com/acme/").
	Extra []string
}

// IsSDK reports whether the dependency is a vendor SDK.
func (m Matcher) IsSDK(eco, name string) bool {
	if m.All {
		return true
	}
	n := normalize(eco, name)
	for _, list := range [][]string{knownSDKs[eco], m.Extra} {
		for _, p := range list {
			p = normalize(eco, p)
			switch {
			case strings.HasSuffix(p, "*") && strings.HasPrefix(n, strings.TrimSuffix(p, "*")),
				strings.HasSuffix(p, "/") && strings.HasPrefix(n, p),
				n == p,
				eco == Go && strings.HasPrefix(n, p+"/"): // major versions: stripe-go/v82
				return true
			}
		}
	}
	return false
}

// normalize makes names comparable: PyPI names per PEP 503.
func normalize(eco, name string) string {
	if eco != PyPI {
		return name
	}
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r == '-' || r == '_' || r == '.' {
			if !dash {
				b.WriteByte('-')
			}
			dash = true
			continue
		}
		dash = false
		b.WriteRune(r)
	}
	return b.String()
}
