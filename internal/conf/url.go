package conf

import "net/url"

// HTTPURL checks a URL setting (an upstream, a token_url, a forward_to):
// it must be an absolute http or https URL without user:password, query or
// fragment. Problems are recorded at path; the parsed URL is returned, or
// nil when it is unusable. Messages never quote the URL: its path or query
// may be a credential (a Slack incoming-webhook URL is one).
func HTTPURL(r *Report, path, raw string) *url.URL {
	if raw == "" {
		r.Errorf(path, "required")
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		r.Errorf(path, "must be an absolute http(s) URL")
		return nil
	}
	if u.User != nil {
		r.Errorf(path, "must not carry user:password; use a credential with a secret reference")
		return nil
	}
	if u.RawQuery != "" || u.Fragment != "" {
		r.Errorf(path, "must not have a query or fragment")
	}
	return u
}
