package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-dev/portcullis/internal/secret"
)

// api is an API over two integrations: payments has a credential whose
// refresh fails when refreshErr is set, maps has none.
type api struct {
	refreshErr error
	noStore    bool
	disabled   map[string]string // name → by
}

func (a *api) Integrations() IntegrationList {
	return IntegrationList{Integrations: []Integration{{Name: "maps"}, {Name: "payments", Status: Status{Breaker: "open"}}}}
}

func (a *api) RefreshCredential(_ context.Context, name string) error {
	switch name {
	case "payments":
		return a.refreshErr
	case "maps":
		return ErrNoCredential
	}
	return ErrUnknownIntegration
}

func (a *api) SetDisabled(_ context.Context, name string, disabled bool, by string) error {
	if name != "payments" && name != "maps" {
		return ErrUnknownIntegration
	}
	if a.noStore {
		return ErrNoStore
	}
	if disabled {
		a.disabled[name] = by
	} else {
		delete(a.disabled, name)
	}
	return nil
}

func (a *api) Gatherer() prometheus.Gatherer { return prometheus.NewRegistry() }

func serve(h http.Handler, method, path string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandler(t *testing.T) {
	a := &api{disabled: map[string]string{}}
	token := func() (secret.Value, bool) { return secret.New("right-token"), true }
	h := Handler(a, Options{Token: token, Ready: func(context.Context) error { return errors.New("redis down at 10.0.0.1") }})
	bearer := map[string]string{"Authorization": "Bearer right-token"}
	for _, c := range []struct {
		name, method, path string
		hdr                map[string]string
		want               int
		body               string // a substring of the answer
	}{
		{"healthz-open", "GET", "/healthz", nil, 200, "ok"},
		{"readyz-no-detail", "GET", "/readyz", nil, 503, "not ready: state store unreachable"},
		{"no-token", "GET", "/api/v1/integrations", nil, 401, "admin token required"},
		{"wrong-token", "GET", "/api/v1/integrations", map[string]string{"Authorization": "Bearer wrong"}, 401, ""},
		{"bearer", "GET", "/api/v1/integrations", bearer, 200, `"breaker": "open"`},
		{"cookie", "GET", "/api/v1/integrations", map[string]string{"Cookie": Cookie + "=right-token"}, 200, `"name": "payments"`},
		{"metrics", "GET", "/metrics", bearer, 200, ""},
		{"refresh", "POST", "/api/v1/integrations/payments/refresh-credentials", bearer, 200, `"refreshed": true`},
		{"refresh-no-credential", "POST", "/api/v1/integrations/maps/refresh-credentials", bearer, 200, `"reason": "no credential"`},
		{"refresh-unknown", "POST", "/api/v1/integrations/nope/refresh-credentials", bearer, 404, "no such integration"},
		{"disable", "POST", "/api/v1/integrations/payments/disable", map[string]string{"Authorization": "Bearer right-token", "X-Portcullis-Actor": " ops "}, 200, `"by": "ops"`},
		{"enable-unknown", "POST", "/api/v1/integrations/nope/enable", bearer, 404, "no such integration"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := serve(h, c.method, c.path, c.hdr)
			if w.Code != c.want || !strings.Contains(w.Body.String(), c.body) {
				t.Errorf("%s %s = %d %s, want %d with %q", c.method, c.path, w.Code, w.Body, c.want, c.body)
			}
		})
	}
	if a.disabled["payments"] != "ops" {
		t.Errorf("kill switches = %v, want payments by ops", a.disabled)
	}
	if w := serve(h, "POST", "/api/v1/integrations/payments/enable", bearer); w.Code != 200 || a.disabled["payments"] != "" {
		t.Errorf("enable: %d %s, switches %v", w.Code, w.Body, a.disabled)
	}

	a.refreshErr, a.noStore = errors.New("token endpoint: 503"), true
	if w := serve(h, "POST", "/api/v1/integrations/payments/refresh-credentials", bearer); w.Code == 200 || !strings.Contains(w.Body.String(), "credential refresh failed") {
		t.Errorf("failed refresh: %d %s", w.Code, w.Body)
	}
	if w := serve(h, "POST", "/api/v1/integrations/payments/disable", bearer); w.Code != 500 || !strings.Contains(w.Body.String(), "no state store") {
		t.Errorf("kill switch without a store: %d %s", w.Code, w.Body)
	}

	none := Handler(a, Options{Token: func() (secret.Value, bool) { return secret.Value{}, false }})
	if w := serve(none, "GET", "/api/v1/integrations", map[string]string{"Authorization": "Bearer "}); w.Code != 401 {
		t.Errorf("no admin token configured: %d, want 401", w.Code)
	}
	var list IntegrationList
	if err := json.Unmarshal(serve(h, "GET", "/api/v1/integrations", bearer).Body.Bytes(), &list); err != nil || len(list.Integrations) != 2 {
		t.Errorf("list: %v %+v", err, list)
	}
}
