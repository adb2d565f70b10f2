package lint

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/config"
)

// secretPatterns are well-known credential formats. Matching them in any
// value of the file catches secrets pasted into free-text fields that
// config validation does not parse as secret references (descriptions,
// header prefixes, URLs, vendor policy links). Hand-written: the
// secret-scanning libraries in Go pull in large rule engines for what is a
// short list here.
var secretPatterns = []struct {
	name string
	re   *regexp.Regexp
}{
	{"a Stripe secret key", regexp.MustCompile(`\b[sr]k_(live|test)_[0-9A-Za-z]{10,}`)},
	{"an OpenAI-style API key", regexp.MustCompile(`\bsk-(proj-)?[A-Za-z0-9_-]{20,}`)},
	{"a Slack token", regexp.MustCompile(`\bxox[abprs]-[0-9A-Za-z-]{10,}`)},
	{"a Slack webhook URL", regexp.MustCompile(`hooks\.slack\.com/services/T[0-9A-Z]+/B[0-9A-Z]+/[0-9A-Za-z]+`)},
	{"a GitHub token", regexp.MustCompile(`\b(gh[pousr]_[0-9A-Za-z]{36}|github_pat_[0-9A-Za-z_]{40,})`)},
	{"an AWS access key id", regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`)},
	{"a Google API key", regexp.MustCompile(`\bAIza[0-9A-Za-z_-]{35}`)},
	{"a SendGrid API key", regexp.MustCompile(`\bSG\.[0-9A-Za-z_-]{16,}\.[0-9A-Za-z_-]{16,}`)},
	{"a private key", regexp.MustCompile(`-----BEGIN ([A-Z]+ )?PRIVATE KEY-----`)},
	{"a JSON Web Token", regexp.MustCompile(`\beyJ[0-9A-Za-z_-]{10,}\.eyJ[0-9A-Za-z_-]{10,}\.[0-9A-Za-z_-]{10,}`)},
	{"a caller token", regexp.MustCompile(`\bpcs_[0-9A-Za-z_-]{16,}`)},
}

// secretQueryParams are URL query parameters that carry credentials.
var secretQueryParams = regexp.MustCompile(`(?i)^(access_token|api_?key|apikey|key|token|secret|client_secret|password|sig|signature|auth)$`)

// secretKey matches map keys (free-form maps such as vendor.policies)
// whose value would be a secret.
var secretKey = regexp.MustCompile(`(?i)(secret|password|passwd|api_?key|token)$`)

// secrets walks every scalar of the file and reports values that look like
// credentials. Values never appear in the message: only what kind of
// secret it looks like.
func (c *checker) secrets(root *yaml.Node) {
	walk(root, "", func(path, key string, n *yaml.Node) {
		if c.reported[path] {
			return
		}
		if kind := secretKind(key, n.Value); kind != "" {
			c.add(conf.PlainSecret, path, "", "value looks like %s written into the config", kind)
			c.reported[path] = true
		}
	})
}

// secretKind says what kind of secret value looks like, or "".
func secretKind(key, value string) string {
	v := strings.TrimSpace(value)
	if v == "" {
		return ""
	}
	for _, p := range secretPatterns {
		if p.re.MatchString(v) {
			return p.name
		}
	}
	if u, err := url.Parse(v); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
		if _, ok := u.User.Password(); ok {
			return "a URL with a password"
		}
		for k := range u.Query() {
			if secretQueryParams.MatchString(k) {
				return "a URL with a credential in its query (" + k + "=)"
			}
		}
		return ""
	}
	if secretKey.MatchString(key) && !strings.Contains(v, " ") {
		if _, _, err := config.ParseSecretRef(v); err != nil {
			return "a secret (under a key named " + key + ")"
		}
	}
	return ""
}

// walk calls fn for every scalar value with its config path and the key
// it sits under.
func walk(n *yaml.Node, path string, fn func(path, key string, n *yaml.Node)) {
	walkKey(n, path, "", fn)
}

func walkKey(n *yaml.Node, path, key string, fn func(path, key string, n *yaml.Node)) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, ch := range n.Content {
			walkKey(ch, path, key, fn)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			p := k
			if path != "" {
				p = path + "." + k
			}
			walkKey(n.Content[i+1], p, k, fn)
		}
	case yaml.SequenceNode:
		for i, ch := range n.Content {
			walkKey(ch, path+"["+strconv.Itoa(i)+"]", key, fn)
		}
	case yaml.ScalarNode:
		fn(path, key, n)
	}
}
