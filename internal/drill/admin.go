package drill

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/admin"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

// ErrGateway wraps failures to reach or understand the gateway.
var ErrGateway = errors.New("drill: gateway")

// Status is what a drill reads of one integration in GET
// /api/v1/integrations: {"integrations":[{"name":…,"status":{…}}]}.
type Status struct {
	Found bool
	// Breaker is status.breaker ("closed", "open", "half-open"); empty when
	// the gateway does not report one.
	Breaker string
	// CredentialRevoked and CredentialRefreshed come from status.credential
	// (revoked, last_refresh) when the gateway reports them.
	CredentialRevoked bool
	LastRefresh       time.Time
}

// ParseIntegrations reads the status of integration name from a GET
// /api/v1/integrations body (admin.IntegrationList), ignoring fields it
// does not know.
func ParseIntegrations(data []byte, name string) (Status, error) {
	var body admin.IntegrationList
	if err := json.Unmarshal(data, &body); err != nil {
		return Status{}, fmt.Errorf("%w: /api/v1/integrations: %w", ErrGateway, err)
	}
	for _, in := range body.Integrations {
		if in.Name != name {
			continue
		}
		st := Status{Found: true, Breaker: in.Status.Breaker}
		if c := in.Status.Credential; c != nil {
			st.CredentialRevoked, st.LastRefresh = c.Revoked, c.LastRefresh
		}
		return st, nil
	}
	return Status{}, nil
}

type adminClient struct {
	base  string
	token secret.Value
	hc    *http.Client
}

func (a adminClient) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(a.base, "/")+path, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrGateway, err)
	}
	if !a.token.IsZero() {
		req.Header.Set("Authorization", "Bearer "+a.token.Reveal())
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %w", ErrGateway, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %w", ErrGateway, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: GET %s: status %d", ErrGateway, path, resp.StatusCode)
	}
	return b, nil
}

func (a adminClient) status(ctx context.Context, integration string) (Status, error) {
	b, err := a.get(ctx, "/api/v1/integrations")
	if err != nil {
		return Status{}, err
	}
	return ParseIntegrations(b, integration)
}

// alerts sums every sample of metrics whose name starts with
// portcullis_alert; ok is false when /metrics has none (or is unreadable).
func (a adminClient) alerts(ctx context.Context) (sum float64, ok bool) {
	b, err := a.get(ctx, "/metrics")
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "portcullis_alert") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err == nil && !math.IsNaN(v) {
			sum += v
			ok = true
		}
	}
	return sum, ok
}
