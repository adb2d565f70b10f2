// Package kvtest owns a small in-memory server that speaks the part of the
// HashiCorp Vault / OpenBao HTTP API that the credential package uses: KV
// version 2 reads and writes, soft delete, destroy, metadata delete, token
// auth and AppRole login. It lets the credential tests run in CI, where
// neither Vault nor OpenBao can be installed, against the same HTTP
// contract as the real servers (https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2).
//
// It is hand-written because no maintained Go library offers a KV v2 test
// double: the real servers are the only alternative.
//
// What it does NOT cover (the real-server run of the same suite does):
// policies and path ACLs (a token is either valid for everything or
// invalid), leases, token TTLs and renewal, check-and-set beyond "cas"
// equality, KV v1 mounts, metadata endpoints other than delete, custom
// metadata, max_versions, delete_version_after, response wrapping,
// namespaces (the header is checked for equality only), seal/unseal and
// HA standby redirects, and the exact wording of every error string.
package kvtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server is a running KV v2 test server on loopback.
type Server struct {
	// URL is the base address, e.g. http://127.0.0.1:41234 (set as VAULT_ADDR).
	URL string
	// RootToken is accepted until revoked.
	RootToken string
	// Namespace, when set, must be sent as X-Vault-Namespace.
	Namespace string

	hs  *httptest.Server
	now func() time.Time

	mu       sync.Mutex
	tokens   map[string]time.Time // token → expiry (zero: none)
	roles    map[string]approle   // role_id → role
	mounts   map[string]map[string]*kvSecret
	down     bool
	fault    Fault
	reads    int
	logins   int
	tokenSeq int
}

type approle struct {
	secretID string
	tokenTTL time.Duration
}

type kvSecret struct {
	current  int
	versions []*kvVersion // index = version-1
}

type kvVersion struct {
	data      map[string]any
	created   time.Time
	deleted   time.Time
	destroyed bool
}

// Fault makes reads of KV data misbehave.
type Fault int

const (
	// NoFault answers normally.
	NoFault Fault = iota
	// FaultNotJSON answers reads with 200 and a body that is not JSON.
	FaultNotJSON
	// FaultNoEnvelope answers reads with 200 and a KV version 1 shape.
	FaultNoEnvelope
	// FaultWrongType answers reads with every value turned into a number.
	FaultWrongType
	// FaultServerError answers every request with 500.
	FaultServerError
)

// New starts a server with one KV v2 mount, "secret" (as `vault server
// -dev` and `bao server -dev` have), and a root token. Close it when done.
func New() *Server {
	s := &Server{
		RootToken: "root-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		now:       time.Now,
		tokens:    map[string]time.Time{},
		roles:     map[string]approle{},
		mounts:    map[string]map[string]*kvSecret{"secret": {}},
	}
	s.tokens[s.RootToken] = time.Time{}
	s.hs = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.hs.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.hs.Close() }

// SetDown makes every request fail with 503 "Vault is sealed" (true) or
// answer normally again (false).
func (s *Server) SetDown(down bool) { s.mu.Lock(); s.down = down; s.mu.Unlock() }

// SetFault sets how KV reads misbehave.
func (s *Server) SetFault(f Fault) { s.mu.Lock(); s.fault = f; s.mu.Unlock() }

// Reads counts KV data reads answered so far.
func (s *Server) Reads() int { s.mu.Lock(); defer s.mu.Unlock(); return s.reads }

// Logins counts successful AppRole logins.
func (s *Server) Logins() int { s.mu.Lock(); defer s.mu.Unlock(); return s.logins }

// Mount adds a KV v2 mount.
func (s *Server) Mount(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mounts[name] == nil {
		s.mounts[name] = map[string]*kvSecret{}
	}
}

// AddToken makes tok valid for ttl (0: forever).
func (s *Server) AddToken(tok string, ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var exp time.Time
	if ttl > 0 {
		exp = s.now().Add(ttl)
	}
	s.tokens[tok] = exp
}

// RevokeToken makes tok invalid.
func (s *Server) RevokeToken(tok string) { s.mu.Lock(); delete(s.tokens, tok); s.mu.Unlock() }

// AddAppRole accepts login with roleID and secretID; issued tokens live ttl.
func (s *Server) AddAppRole(roleID, secretID string, ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles[roleID] = approle{secretID: secretID, tokenTTL: ttl}
}

// RevokeAll invalidates every token, the root token included.
func (s *Server) RevokeAll() { s.mu.Lock(); clear(s.tokens); s.mu.Unlock() }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fault == FaultServerError {
		writeErr(w, http.StatusInternalServerError, "internal error")
		return
	}
	if s.down {
		writeErr(w, http.StatusServiceUnavailable, "Vault is sealed")
		return
	}
	p, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if p == "sys/health" {
		writeJSON(w, http.StatusOK, map[string]any{"initialized": true, "sealed": false, "standby": false})
		return
	}
	if m, ok := strings.CutPrefix(p, "auth/"); ok && strings.HasSuffix(m, "/login") && (r.Method == http.MethodPost || r.Method == http.MethodPut) {
		s.login(w, r)
		return
	}
	if !s.authorized(r) {
		writeErr(w, http.StatusForbidden, "permission denied")
		return
	}
	mount, op, path := s.route(p)
	if mount == nil {
		writeErr(w, http.StatusNotFound, fmt.Sprintf("no handler for route %q. route entry not found.", p))
		return
	}
	switch {
	case op == "data" && r.Method == http.MethodGet:
		s.read(w, r, mount, path)
	case op == "data" && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		s.write(w, r, mount, path)
	case op == "data" && r.Method == http.MethodDelete:
		s.softDelete(w, mount, path, nil)
	case op == "delete" && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		s.softDelete(w, mount, path, versionsFrom(r))
	case op == "destroy" && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		s.destroy(w, mount, path, versionsFrom(r))
	case op == "metadata" && r.Method == http.MethodDelete:
		delete(mount, path)
		w.WriteHeader(http.StatusNoContent)
	default:
		writeErr(w, http.StatusMethodNotAllowed, "unsupported operation")
	}
}

func (s *Server) authorized(r *http.Request) bool {
	if s.Namespace != "" && strings.Trim(r.Header.Get("X-Vault-Namespace"), "/") != s.Namespace {
		return false
	}
	exp, ok := s.tokens[r.Header.Get("X-Vault-Token")]
	return ok && (exp.IsZero() || s.now().Before(exp))
}

// route splits MOUNT/OP/PATH, matching the longest mount.
func (s *Server) route(p string) (map[string]*kvSecret, string, string) {
	best := ""
	for m := range s.mounts {
		if strings.HasPrefix(p, m+"/") && len(m) > len(best) {
			best = m
		}
	}
	if best == "" {
		return nil, "", ""
	}
	op, path, ok := strings.Cut(strings.TrimPrefix(p, best+"/"), "/")
	if !ok || path == "" {
		return nil, "", ""
	}
	return s.mounts[best], op, path
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var in struct {
		RoleID   string `json:"role_id"`
		SecretID string `json:"secret_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeErr(w, http.StatusBadRequest, "failed to parse JSON input")
		return
	}
	role, ok := s.roles[in.RoleID]
	if !ok || role.secretID != in.SecretID {
		writeErr(w, http.StatusBadRequest, "invalid role or secret ID")
		return
	}
	s.tokenSeq++
	s.logins++
	tok := fmt.Sprintf("hvs.test-%d-%d", s.tokenSeq, time.Now().UnixNano())
	var exp time.Time
	if role.tokenTTL > 0 {
		exp = s.now().Add(role.tokenTTL)
	}
	s.tokens[tok] = exp
	writeJSON(w, http.StatusOK, map[string]any{"auth": map[string]any{
		"client_token": tok, "lease_duration": int(role.tokenTTL.Seconds()), "renewable": true,
		"policies": []string{"default"}, "token_policies": []string{"default"},
	}})
}

func (s *Server) read(w http.ResponseWriter, r *http.Request, mount map[string]*kvSecret, path string) {
	s.reads++
	sec := mount[path]
	if sec == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"errors": []string{}})
		return
	}
	n := sec.current
	if q := r.URL.Query().Get("version"); q != "" && q != "0" {
		v, err := strconv.Atoi(q)
		if err != nil || v < 1 || v > len(sec.versions) {
			writeJSON(w, http.StatusNotFound, map[string]any{"errors": []string{}})
			return
		}
		n = v
	}
	v := sec.versions[n-1]
	md := metadata(n, v)
	if !v.deleted.IsZero() || v.destroyed {
		writeJSON(w, http.StatusNotFound, envelope(map[string]any{"data": nil, "metadata": md}))
		return
	}
	data := map[string]any{}
	for k, val := range v.data {
		data[k] = val
	}
	switch s.fault {
	case FaultNotJSON:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("<html>502 Bad Gateway</html>"))
		return
	case FaultNoEnvelope:
		writeJSON(w, http.StatusOK, envelope(data))
		return
	case FaultWrongType:
		for k := range data {
			data[k] = 42
		}
	}
	writeJSON(w, http.StatusOK, envelope(map[string]any{"data": data, "metadata": md}))
}

func (s *Server) write(w http.ResponseWriter, r *http.Request, mount map[string]*kvSecret, path string) {
	var in struct {
		Data    map[string]any `json:"data"`
		Options struct {
			CAS *int `json:"cas"`
		} `json:"options"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Data == nil {
		writeErr(w, http.StatusBadRequest, "no data provided")
		return
	}
	sec := mount[path]
	if sec == nil {
		sec = &kvSecret{}
		mount[path] = sec
	}
	if in.Options.CAS != nil && *in.Options.CAS != len(sec.versions) {
		writeErr(w, http.StatusBadRequest, "check-and-set parameter did not match the current version")
		return
	}
	v := &kvVersion{data: in.Data, created: s.now().UTC()}
	sec.versions = append(sec.versions, v)
	sec.current = len(sec.versions)
	writeJSON(w, http.StatusOK, envelope(metadata(sec.current, v)))
}

func (s *Server) softDelete(w http.ResponseWriter, mount map[string]*kvSecret, path string, versions []int) {
	sec := mount[path]
	if sec != nil {
		if versions == nil {
			versions = []int{sec.current}
		}
		for _, n := range versions {
			if n >= 1 && n <= len(sec.versions) {
				sec.versions[n-1].deleted = s.now().UTC()
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) destroy(w http.ResponseWriter, mount map[string]*kvSecret, path string, versions []int) {
	if sec := mount[path]; sec != nil {
		for _, n := range versions {
			if n >= 1 && n <= len(sec.versions) {
				v := sec.versions[n-1]
				v.destroyed, v.data = true, nil
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func versionsFrom(r *http.Request) []int {
	var in struct {
		Versions []int `json:"versions"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	if in.Versions == nil {
		return []int{}
	}
	return in.Versions
}

func metadata(n int, v *kvVersion) map[string]any {
	del := ""
	if !v.deleted.IsZero() {
		del = v.deleted.Format(time.RFC3339Nano)
	}
	return map[string]any{
		"created_time": v.created.Format(time.RFC3339Nano), "custom_metadata": nil,
		"deletion_time": del, "destroyed": v.destroyed, "version": n,
	}
}

func envelope(data any) map[string]any {
	return map[string]any{
		"request_id": "00000000-0000-0000-0000-000000000000", "lease_id": "", "renewable": false,
		"lease_duration": 0, "data": data, "wrap_info": nil, "warnings": nil, "auth": nil,
	}
}

func writeErr(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"errors": []string{msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
