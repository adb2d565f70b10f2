package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

// ErrAdmin wraps every refusal or failure of the admin API seen by Client.
var ErrAdmin = errors.New("chaos: admin API")

// Client talks to a running gateway's chaos admin API (the chaos command
// and drills use it).
type Client struct {
	// Admin is the admin listener's base URL, e.g. http://127.0.0.1:9090.
	Admin string
	// Token is the admin bearer token.
	Token secret.Value
	// HTTP is the client to use (nil: one with a 10s timeout).
	HTTP *http.Client
}

// Start sets a fault for ttl (0: the server's default).
func (c *Client) Start(ctx context.Context, f Fault, ttl time.Duration) (Fault, error) {
	j := faultJSON{Integration: f.Integration, Route: f.Route, Kind: f.Kind, Probability: f.Probability,
		Status: f.Status, Size: f.Size, ID: f.ID}
	if f.Latency > 0 {
		j.Latency = f.Latency.String()
	}
	if ttl > 0 {
		j.For = ttl.String()
	}
	body, err := json.Marshal(j)
	if err != nil {
		return Fault{}, err
	}
	var out Fault
	err = c.do(ctx, http.MethodPost, "/api/v1/chaos", body, http.StatusCreated, &out)
	return out, err
}

// Stop removes one fault.
func (c *Client) Stop(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/chaos/"+url.PathEscape(id), nil, http.StatusNoContent, nil)
}

// StopAll removes every fault of integration (every fault when empty) and
// returns how many were removed.
func (c *Client) StopAll(ctx context.Context, integration string) (int, error) {
	p := "/api/v1/chaos"
	if integration != "" {
		p += "?integration=" + url.QueryEscape(integration)
	}
	var out struct {
		Removed int `json:"removed"`
	}
	err := c.do(ctx, http.MethodDelete, p, nil, http.StatusOK, &out)
	return out.Removed, err
}

// List returns whether chaos is enabled and the active faults.
func (c *Client) List(ctx context.Context) (List, error) {
	var out List
	err := c.do(ctx, http.MethodGet, "/api/v1/chaos", nil, http.StatusOK, &out)
	return out, err
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, want int, out any) error {
	hc := c.HTTP
	if hc == nil {
		// No proxy from the environment: the admin token goes to the
		// address the operator gave, and nowhere else.
		hc = &http.Client{Timeout: 10 * time.Second, Transport: egress.CLITransport()}
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.Admin, "/")+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAdmin, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if !c.Token.IsZero() {
		req.Header.Set("Authorization", "Bearer "+c.Token.Reveal())
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrAdmin, method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: %s %s: read answer: %w", ErrAdmin, method, path, err)
	}
	if resp.StatusCode != want {
		var p struct {
			Title  string `json:"title"`
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(data, &p)
		msg := strings.TrimSpace(p.Detail)
		if msg == "" {
			msg = p.Title
		}
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return fmt.Errorf("%w: %s %s: %d: %s", ErrAdmin, method, path, resp.StatusCode, msg)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%w: %s %s: bad answer: %w", ErrAdmin, method, path, err)
		}
	}
	return nil
}
