package credential

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/secret"
)

// kvReadResponse is the part of a KV v2 read answer
// (GET /v1/MOUNT/data/PATH) that we use. It is decoded here rather than by
// the client's KVv2 helper because that helper's errors quote the payload
// ("unexpected type for 'data' element: %#v"), which for a malformed answer
// can be the secret itself.
type kvReadResponse struct {
	Data *struct {
		Data     map[string]json.RawMessage `json:"data"`
		Metadata *kvMetadata                `json:"metadata"`
	} `json:"data"`
	Errors []string `json:"errors"`
}

type kvMetadata struct {
	CreatedTime  string `json:"created_time"`
	DeletionTime string `json:"deletion_time"`
	Destroyed    bool   `json:"destroyed"`
	Version      int64  `json:"version"`
}

// parseKVRead turns a KV v2 read answer into a Secret holding key. Errors
// name the status, the key and Vault's own error strings, never a value.
func parseKVRead(status int, body []byte, key string) (Secret, error) {
	var r kvReadResponse
	jsonErr := json.Unmarshal(body, &r)
	switch {
	case status == http.StatusOK:
	case status == http.StatusNotFound:
		if jsonErr == nil && r.Data != nil && r.Data.Metadata != nil {
			if m := r.Data.Metadata; m.Destroyed {
				return Secret{}, fmt.Errorf("%w: KV version %d was destroyed", ErrRevoked, m.Version)
			} else if m.DeletionTime != "" {
				return Secret{}, fmt.Errorf("%w: KV version %d was deleted at %s", ErrRevoked, m.Version, truncate(m.DeletionTime, 40))
			}
		}
		return Secret{}, fmt.Errorf("%w: no secret at this KV v2 path", ErrNotFound)
	case status == http.StatusForbidden:
		return Secret{}, fmt.Errorf("%w: 403%s", ErrPermissionDenied, vaultErrors(r.Errors))
	default:
		return Secret{}, fmt.Errorf("%w: secret store answered %d%s", ErrUnavailable, status, vaultErrors(r.Errors))
	}
	if jsonErr != nil {
		return Secret{}, fmt.Errorf("%w: KV v2 read answer is not JSON", ErrMalformed)
	}
	if r.Data == nil {
		return Secret{}, fmt.Errorf("%w: KV v2 read answer has no \"data\" envelope (is the mount KV version 1?)", ErrMalformed)
	}
	m := r.Data.Metadata
	if r.Data.Data == nil {
		if m != nil && (m.Destroyed || m.DeletionTime != "") {
			return Secret{}, fmt.Errorf("%w: KV version %d was deleted or destroyed", ErrRevoked, m.Version)
		}
		return Secret{}, fmt.Errorf("%w: KV v2 read answer has no data.data object (is the mount KV version 1?)", ErrMalformed)
	}
	raw, ok := r.Data.Data[key]
	if !ok {
		return Secret{}, fmt.Errorf("%w: key %q is not in the secret (it has %d keys)", ErrNotFound, truncate(key, 100), len(r.Data.Data))
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return Secret{}, fmt.Errorf("%w: the value of key %q is not a string", ErrMalformed, truncate(key, 100))
	}
	s := Secret{Value: secret.New(v)}
	if m != nil {
		if m.Version > 0 {
			s.Version = strconv.FormatInt(m.Version, 10)
		}
		if t, err := time.Parse(time.RFC3339Nano, m.CreatedTime); err == nil {
			s.Created = t
		}
	}
	return s, nil
}

// vaultErrors formats Vault's "errors" list for an error message. These are
// server messages such as "permission denied"; they are truncated in case a
// misbehaving server sends something long.
func vaultErrors(errs []string) string {
	if len(errs) == 0 {
		return ""
	}
	return ": " + truncate(strings.Join(errs, "; "), 200)
}

// splitVaultTarget splits MOUNT/data/PATH#KEY at the first "/data/" and the
// first "#".
func splitVaultTarget(target string) (mount, path, key string, err error) {
	p, key, ok := strings.Cut(target, "#")
	if !ok || key == "" {
		return "", "", "", fmt.Errorf("%w: vault: reference must be MOUNT/data/PATH#KEY", ErrBadReference)
	}
	mount, path, ok = strings.Cut(p, "/data/")
	if !ok || mount == "" || path == "" || strings.HasPrefix(mount, "/") {
		return "", "", "", fmt.Errorf("%w: vault: reference must be MOUNT/data/PATH#KEY (KV version 2)", ErrBadReference)
	}
	return mount, path, key, nil
}
