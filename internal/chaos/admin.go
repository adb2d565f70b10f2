package chaos

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
)

// maxRequestBody bounds a POST /api/v1/chaos body.
const maxRequestBody = 16 << 10

// List is the body of GET /api/v1/chaos.
type List struct {
	Enabled bool    `json:"enabled"`
	Faults  []Fault `json:"faults"`
}

// AdminHandler serves the chaos admin API on the paths below. The gateway
// mounts it behind the admin token at "/api/v1/chaos" and "/api/v1/chaos/".
//
//	GET    /api/v1/chaos              {"enabled":bool,"faults":[...]}
//	POST   /api/v1/chaos              body: a fault (see DecodeRequest) → 201 and the fault
//	DELETE /api/v1/chaos/{id}         one fault → 204 (404 if unknown)
//	DELETE /api/v1/chaos?integration=NAME   every fault of NAME (all without it) → 200 {"removed":N}
//
// POST answers 403 when chaos is disabled in the config and 400 for a bad
// fault. log receives who did what (nil: discarded).
func AdminHandler(inj *Injector, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &admin{inj: inj, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/chaos", a.list)
	mux.HandleFunc("POST /api/v1/chaos", a.create)
	mux.HandleFunc("DELETE /api/v1/chaos", a.removeAll)
	mux.HandleFunc("DELETE /api/v1/chaos/{id}", a.remove)
	return mux
}

type admin struct {
	inj *Injector
	log *slog.Logger
}

func (a *admin) list(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, List{Enabled: a.inj.Enabled(), Faults: a.inj.List()})
}

func (a *admin) create(w http.ResponseWriter, r *http.Request) {
	if !a.inj.Enabled() {
		writeProblem(w, http.StatusForbidden, "Chaos disabled", ErrDisabled.Error())
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		writeProblem(w, http.StatusRequestEntityTooLarge, "Request too large", "a fault is a small JSON object")
		return
	}
	req, err := DecodeRequest(data)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, "Bad fault", err.Error())
		return
	}
	req.Fault.Expires = a.inj.clk().Add(req.TTL)
	req.Fault.Source = "api"
	f, err := a.inj.Set(req.Fault)
	switch {
	case errors.Is(err, ErrDisabled):
		writeProblem(w, http.StatusForbidden, "Chaos disabled", err.Error())
		return
	case err != nil:
		writeProblem(w, http.StatusBadRequest, "Bad fault", err.Error())
		return
	}
	a.log.Warn("chaos fault started through the admin API", logFaultID, f.ID, logIntegration, f.Integration,
		logRoute, f.Route, logKind, string(f.Kind), "expires", f.Expires)
	writeJSON(w, http.StatusCreated, f)
}

func (a *admin) remove(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := a.inj.Remove(id); err != nil {
		writeProblem(w, http.StatusNotFound, "No such fault", "no active fault has that id")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *admin) removeAll(w http.ResponseWriter, r *http.Request) {
	only := r.URL.Query().Get("integration")
	n := 0
	for _, f := range a.inj.List() {
		if only != "" && f.Integration != only {
			continue
		}
		if a.inj.Remove(f.ID) == nil {
			n++
		}
	}
	a.log.Warn("chaos faults stopped through the admin API", logIntegration, only, "removed", n)
	writeJSON(w, http.StatusOK, map[string]int{"removed": n})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, "Internal error", "could not encode the answer")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeProblem answers an RFC 9457 document (the admin API's errors are
// not gateway refusals of a call, so they carry no X-Portcullis-Error).
func writeProblem(w http.ResponseWriter, status int, title, detail string) {
	b, _ := json.Marshal(map[string]any{"type": "about:blank", "title": title, "status": status, "detail": detail})
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
