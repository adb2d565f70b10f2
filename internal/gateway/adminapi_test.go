package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/admin"
	"github.com/portcullis-dev/portcullis/internal/credential"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

// adminGET serves one authenticated GET on the gateway's admin handler.
func adminGET(t *testing.T, gw *Gateway, path string) []byte {
	t.Helper()
	h := admin.Handler(gw, admin.Options{Token: func() (secret.Value, bool) { return secret.New("admin-token"), true }})
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.Header.Set("Authorization", "Bearer admin-token")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
	}
	b, err := io.ReadAll(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keys lists the names of a JSON object.
func keys(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return slices.Sorted(maps.Keys(m))
}

// The admin JSON of a running gateway decodes into admin.IntegrationList
// with no field left over, and its names are the ones the admin API has
// always sent (the dashboard, the drill and operators' scripts read them).
func TestAdminIntegrationsWire(t *testing.T) {
	v := newVendor(t, nil)
	cred := credential.Status{
		Integration: "payments", Type: "oauth2", Ref: "vault:kv/payments#secret", Version: "3", SecretVersion: "2",
		Created: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), LastRefresh: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC),
		Expires: time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC), Scopes: []string{"charges"}, Revoked: true,
		RevokedAt: time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC), LastError: "token endpoint: 503",
	}
	f := newFixtureWith(t, v.URL, baseConfig, Options{Status: func(name string, st *admin.Status) {
		if name == "payments" {
			c := cred
			st.Credential = &c
		}
	}})
	if resp := f.do(t, http.MethodGet, "/payments/v1/charges/ch_1", f.billing, nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("call: %d", resp.StatusCode)
	}
	body := adminGET(t, f.gw, "/api/v1/integrations")

	var list admin.IntegrationList
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err != nil {
		t.Fatalf("decode into admin.IntegrationList: %v\n%s", err, body)
	}
	if len(list.Integrations) != 1 {
		t.Fatalf("integrations: %+v", list.Integrations)
	}
	in := list.Integrations[0]
	if in.Name != "payments" || in.Upstream != v.URL || in.Routes != 4 {
		t.Errorf("row = %q %q %d", in.Name, in.Upstream, in.Routes)
	}
	st := in.Status
	if st.Breaker != "closed" || st.BreakerDetail.Requests != 1 || st.BreakerDetail.Since.IsZero() || st.Disabled ||
		st.MaxInFlight != 100 || st.InFlight != 0 || st.Limiter.VendorRemaining != -1 || st.RetryBudget.Requests != 1 {
		t.Errorf("status = %+v", st)
	}
	if d := cmp.Diff(&cred, st.Credential); d != "" {
		t.Errorf("credential (-want +got):\n%s", d)
	}

	// The names on the wire, pinned: renaming or adding one is an API change.
	var raw struct {
		Integrations []map[string]json.RawMessage `json:"integrations"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	row := raw.Integrations[0]
	var status map[string]json.RawMessage
	if err := json.Unmarshal(row["status"], &status); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		raw  json.RawMessage
		want []string
	}{
		{"row", mustJSON(t, row), []string{"name", "routes", "status", "upstream"}},
		{"status", row["status"], []string{"breaker", "breaker_detail", "credential", "disabled", "in_flight", "limiter", "max_in_flight", "retry_budget"}},
		{"breaker_detail", status["breaker_detail"], []string{"failures", "requests", "since"}},
		{"limiter", status["limiter"], []string{"burst", "paused_until", "rate", "refused", "tokens", "vendor_remaining", "vendor_reset"}},
		{"retry_budget", status["retry_budget"], []string{"Allowed", "Requests", "Retries"}},
		{"credential", status["credential"], []string{"created", "expires", "integration", "last_error", "last_refresh", "ref", "revoked", "revoked_at", "scopes", "secret_version", "type", "version"}},
	} {
		if d := cmp.Diff(c.want, keys(t, c.raw)); d != "" {
			t.Errorf("%s names (-want +got):\n%s", c.what, d)
		}
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
