package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Actions are carried out by the admin API's own handlers, called in
// process: the kill switch and credential refresh on the admin mux (so the
// gateway applies and logs them exactly as for a curl), chaos on
// Options.Chaos. The request carries the admin token (never leaving the
// process) and X-Portcullis-Actor: admin:<session id>, which the gateway
// records as `by`; the dashboard logs each action with the same actor.

const maxActionBody = 4 << 10

// captureWriter is a minimal http.ResponseWriter that keeps the answer of
// an in-process call (httptest.ResponseRecorder is for tests).
type captureWriter struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (c *captureWriter) Header() http.Header { return c.h }
func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	// An admin answer is small; cap it all the same.
	if c.body.Len()+len(b) > 1<<20 {
		return 0, io.ErrShortWrite
	}
	return c.body.Write(b)
}

// callAdmin serves method path on h in process, as the admin.
func (d *Dashboard) callAdmin(ctx context.Context, h http.Handler, method, path string, body []byte, actor string) (int, []byte) {
	if h == nil {
		return http.StatusServiceUnavailable, nil
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://admin.internal"+path, bytes.NewReader(body))
	if err != nil {
		return http.StatusInternalServerError, nil
	}
	req.RequestURI = path
	req.RemoteAddr = "127.0.0.1:0"
	if tok, ok := d.tokenValue(); ok {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if actor != "" {
		req.Header.Set("X-Portcullis-Actor", actor)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	cw := &captureWriter{h: http.Header{}}
	h.ServeHTTP(cw, req)
	if cw.status == 0 {
		cw.status = http.StatusOK
	}
	return cw.status, cw.body.Bytes()
}

func (d *Dashboard) tokenValue() (string, bool) {
	if d.o.Token == nil {
		return "", false
	}
	v, ok := d.o.Token()
	if !ok || v.IsZero() {
		return "", false
	}
	return v.Reveal(), true // only into an in-process request header
}

// ActionResult is the answer to every action.
type ActionResult struct {
	OK      bool   `json:"ok"`
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// publicMessage takes the title and detail of a problem+json answer (the
// admin API's public texts) and nothing else.
func publicMessage(status int, body []byte) string {
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &p) != nil || (p.Title == "" && p.Detail == "") {
		return http.StatusText(status)
	}
	if p.Detail == "" {
		return clip(p.Title)
	}
	return clip(p.Title + ": " + p.Detail)
}

var integrationActions = map[string]string{
	"disable":             "kill switch on",
	"enable":              "kill switch off",
	"refresh-credentials": "credential refresh",
}

func (d *Dashboard) postIntegrationAction(w http.ResponseWriter, r *http.Request, s *session) {
	name, action := r.PathValue("name"), r.PathValue("action")
	what, ok := integrationActions[action]
	if !ok || !validName(name) {
		writeError(w, http.StatusNotFound, "no such action")
		return
	}
	status, body := d.callAdmin(r.Context(), d.admin, http.MethodPost,
		"/api/v1/integrations/"+url.PathEscape(name)+"/"+action, nil, s.actor())
	d.finishAction(w, s, what, name, status, body)
}

func (d *Dashboard) finishAction(w http.ResponseWriter, s *session, what, name string, status int, body []byte) {
	res := ActionResult{OK: status >= 200 && status < 300, Status: status}
	if res.OK {
		res.Message = what + ": done"
		d.log.Warn("dashboard action", "action", what, "integration", name, "by", s.actor(), "status", status)
	} else {
		res.Message = publicMessage(status, body)
		d.log.Warn("dashboard action failed", "action", what, "integration", name, "by", s.actor(), "status", status)
	}
	code := http.StatusOK
	if !res.OK {
		code = http.StatusBadGateway
		if status >= 400 && status < 500 {
			code = status
		}
	}
	writeJSON(w, code, res)
}

func (d *Dashboard) postChaos(w http.ResponseWriter, r *http.Request, s *session) {
	if d.o.Chaos == nil {
		writeError(w, http.StatusNotFound, "chaos is not available")
		return
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxActionBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "request too large")
		return
	}
	switch r.PathValue("action") {
	case "start":
		c, err := parseChaosStart(b)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad chaos request: want integration, kind ("+strings.Join(chaosKinds, ", ")+") and for")
			return
		}
		fault, _ := json.Marshal(c)
		status, body := d.callAdmin(r.Context(), d.o.Chaos, http.MethodPost, "/api/v1/chaos", fault, s.actor())
		d.finishAction(w, s, "chaos start "+c.Kind+" for "+c.For, c.Integration, status, body)
	case "stop":
		var req struct {
			Integration string `json:"integration"`
		}
		if json.Unmarshal(b, &req) != nil || !validName(req.Integration) {
			writeError(w, http.StatusBadRequest, "bad chaos request: want integration")
			return
		}
		status, body := d.callAdmin(r.Context(), d.o.Chaos, http.MethodDelete,
			"/api/v1/chaos?integration="+url.QueryEscape(req.Integration), nil, s.actor())
		d.finishAction(w, s, "chaos stop", req.Integration, status, body)
	default:
		writeError(w, http.StatusNotFound, "no such action")
	}
}
