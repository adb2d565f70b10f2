package server

import (
	"context"
	"fmt"
	"time"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/credential"
	"github.com/portcullis-dev/portcullis/internal/mint"
)

// inspectCA loads server.inspect_ca, its key resolved like every other
// secret (and so added to the log scrubber), into the Authority that mints
// the certificates of inspected tunnels. It returns nil when the config has
// no inspect_ca. o.Allowed says which hosts get leaves (nil: none, enough
// to check the key). Errors name the config path, its line and the
// reference, never the key.
func (a *assembly) inspectCA(ctx context.Context, cfg *config.Config, o mint.Options) (*mint.Authority, error) {
	ca := cfg.Server.InspectCA
	if ca == nil {
		return nil, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := a.resolver.Resolve(cctx, ca.Key, credential.DefaultTTL, time.Hour)
	if err != nil {
		const p = "server.inspect_ca.key"
		return nil, fmt.Errorf("%s (line %d): %s: %w", p, cfg.Line(p), ca.Key.Ref(), err)
	}
	auth, err := ca.Load(s.Value, o)
	if err != nil {
		const p = "server.inspect_ca"
		return nil, fmt.Errorf("%s (line %d): %w", p, cfg.Line(p), err)
	}
	return auth, nil
}
