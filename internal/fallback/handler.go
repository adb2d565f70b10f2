package fallback

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/portcullis-dev/portcullis/internal/problem"
)

// JobsPath is where job status is served: GET /jobs/{id}.
const JobsPath = "/jobs/"

// PrefersAsync reports whether the request's Prefer fields (RFC 7240)
// include respond-async. Preference names are case-insensitive; values and
// parameters are ignored.
func PrefersAsync(h http.Header) bool {
	for _, v := range h.Values("Prefer") {
		for _, pref := range splitOutsideQuotes(v, ',') {
			name, _, _ := strings.Cut(pref, ";")
			name, _, _ = strings.Cut(name, "=")
			if strings.EqualFold(strings.TrimSpace(name), "respond-async") {
				return true
			}
		}
	}
	return false
}

// splitOutsideQuotes splits s at sep, ignoring seps inside quoted strings
// (with backslash escapes), as RFC 9110 lists require.
func splitOutsideQuotes(s string, sep byte) []string {
	var out []string
	inQuote, escaped, start := false, false, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case inQuote && c == '\\':
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// Accepted is the body of the 202 answer to a queued call.
type Accepted struct {
	JobID     string `json:"job_id"`
	StatusURL string `json:"status_url"`
}

// WriteAccepted answers a queued call: 202, Location and a JSON body naming
// the job's status URL, Preference-Applied: respond-async and
// X-Portcullis-Fallback: queued.
func WriteAccepted(w http.ResponseWriter, jobID string) {
	loc := JobsPath + jobID
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Location", loc)
	h.Set("Preference-Applied", "respond-async")
	h.Set(HeaderFallback, "queued")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(Accepted{JobID: jobID, StatusURL: loc})
}

// jobJSON is the GET /jobs/{id} document: JobView with the result body
// rendered as text when it is UTF-8, else base64.
type jobJSON struct {
	JobView
	Result *resultJSON `json:"result,omitempty"`
}

type resultJSON struct {
	Status     int                 `json:"status"`
	Header     map[string][]string `json:"headers,omitempty"`
	Body       *string             `json:"body,omitempty"`
	BodyBase64 []byte              `json:"body_base64,omitempty"`
	Truncated  bool                `json:"truncated,omitempty"`
}

// Handler serves GET /jobs/{id} (mounted as "GET /jobs/{id}" or under
// JobsPath) to the caller that created the job; any
// other caller, and any unknown id, gets the same 404. callerFromRequest
// authenticates the request (false: 401 unauthenticated).
func (q *Queue) Handler(callerFromRequest func(*http.Request) (string, bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqID := r.Header.Get("X-Request-Id")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeProblem(w, http.StatusMethodNotAllowed, "Method not allowed", "jobs are read with GET", reqID)
			return
		}
		caller, ok := callerFromRequest(r)
		if !ok {
			problem.Write(w, reqID, problem.New(problem.Unauthenticated, "a caller credential is required"))
			return
		}
		id := r.PathValue("id") // when mounted as "GET /jobs/{id}"
		if id == "" {
			id, _ = strings.CutPrefix(r.URL.Path, JobsPath)
		}
		if id == "" || strings.Contains(id, "/") {
			writeProblem(w, http.StatusNotFound, "Not found", "no such job", reqID)
			return
		}
		v, err := q.Get(r.Context(), caller, id)
		switch {
		case errors.Is(err, ErrJobNotFound):
			writeProblem(w, http.StatusNotFound, "Not found", "no such job", reqID)
			return
		case err != nil:
			problem.Write(w, reqID, problem.Wrap(problem.Internal, "job status unavailable", err))
			return
		}
		doc := jobJSON{JobView: v}
		if res := v.Result; res != nil {
			rj := &resultJSON{Status: res.Status, Header: res.Header, Truncated: res.Truncated}
			if utf8.Valid(res.Body) {
				s := string(res.Body)
				rj.Body = &s
			} else {
				rj.BodyBase64 = res.Body
			}
			doc.Result = rj
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(doc)
	})
}

// writeProblem writes an RFC 9457 document for answers that have no code in
// the gateway's error table (a missing job is not a refusal of a vendor call).
func writeProblem(w http.ResponseWriter, status int, title, detail, reqID string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problem.Body{Type: "about:blank", Title: title, Status: status, Detail: detail, RequestID: reqID})
}
