package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/problem"
	"github.com/portcullis-dev/portcullis/internal/secret"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// Refusal causes that are not verification sentinels.
var (
	errUnknownPath = errors.New("webhook: no webhook at this path")
	errMethod      = errors.New("webhook: method not allowed")
	errRateLimited = errors.New("webhook: source over its rate limit")
	errContentType = errors.New("webhook: unsupported content type")
	errTooLarge    = errors.New("webhook: body over max_body_bytes")
	errBody        = errors.New("webhook: body could not be read")
	errUnavailable = errors.New("webhook: state store unavailable")
)

// outcomeOf is the requests_total outcome label of a request's error.
func outcomeOf(err error) string {
	switch {
	case err == nil:
		return "accepted"
	case errors.Is(err, errUnknownPath):
		return "unknown_path"
	case errors.Is(err, errMethod):
		return "method"
	case errors.Is(err, errRateLimited):
		return "rate_limited"
	case errors.Is(err, errContentType):
		return "content_type"
	case errors.Is(err, errTooLarge):
		return "too_large"
	case errors.Is(err, errBody), errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrSignature):
		return "signature"
	case errors.Is(err, ErrTimestamp):
		return "timestamp"
	case errors.Is(err, ErrReplay):
		return "replay"
	case errors.Is(err, ErrSchema):
		return "schema"
	}
	return "unavailable" // store or secrets: the gateway's trouble, not the sender's
}

func rejected(status int, detail string, cause error) *problem.Error {
	return &problem.Error{Code: problem.WebhookRejected, Detail: detail, StatusOverride: status, Err: cause}
}

// endpoint is one compiled webhook.
type endpoint struct {
	name      string
	cfg       *Spec
	verifier  Verifier
	schema    *jsonschema.Schema
	limiter   *sourceLimiter
	burst     *burstDetector
	tolerance time.Duration
	maxBody   int64
	forms     bool // also accepts application/x-www-form-urlencoded
}

// Handler serves server.webhook_listen: it routes by exact path, verifies,
// refuses replays and persists accepted webhooks for the Forwarder before
// answering 2xx. Build it once per config; it is safe for concurrent use.
type Handler struct {
	o      Options
	byPath map[string]*endpoint
}

var _ http.Handler = (*Handler)(nil)

// NewHandler compiles webhooks (by config name) into a Handler.
func NewHandler(webhooks map[string]*Spec, o Options) (*Handler, error) {
	if o.Store == nil || o.Secrets == nil {
		return nil, errors.New("webhook: Options.Store and Options.Secrets are required")
	}
	o = o.withDefaults()
	h := &Handler{o: o, byPath: map[string]*endpoint{}}
	var errs []error
	for name, w := range webhooks {
		ep, err := compileEndpoint(name, w, o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if other, dup := h.byPath[w.Path]; dup {
			errs = append(errs, fmt.Errorf("webhooks.%s: same path as %s", name, other.name))
			continue
		}
		h.byPath[w.Path] = ep
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return h, nil
}

func compileEndpoint(name string, w *Spec, o Options) (*endpoint, error) {
	if w == nil {
		return nil, fmt.Errorf("webhooks.%s: empty", name)
	}
	w = provisioned(w)
	r := conf.NewReport("webhooks." + name)
	if w.Validate(r); r.HasErrors() {
		return nil, r.Err()
	}
	v, err := NewVerifier(w)
	if err != nil {
		return nil, fmt.Errorf("webhooks.%s: %w", name, err)
	}
	ep := &endpoint{
		name: name, cfg: w, verifier: v,
		limiter:   newSourceLimiter(w.RateLimit.PerSecond),
		burst:     newBurstDetector(o.BurstThreshold, o.BurstWindow),
		tolerance: w.Tolerance.D,
		maxBody:   w.MaxBodyBytes.N,
		forms:     w.Scheme == "github" || w.Scheme == "slack" || w.Scheme == "hmac_sha256",
	}
	if w.Schema != "" {
		if ep.schema, err = compileSchema(w.Schema, o.BaseDir); err != nil {
			return nil, fmt.Errorf("webhooks.%s.schema: %w", name, err)
		}
		ep.forms = false
	}
	return ep, nil
}

// accepted is what a successful request produced.
type accepted struct {
	msgID     string
	jobID     string
	challenge string // Slack url_verification handshake
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := newID("req_")
	w.Header().Set("X-Request-Id", reqID)
	ep := h.byPath[r.URL.Path]
	name := "unknown"
	if ep != nil {
		name = ep.name
	}
	res, err := h.serve(w, r, ep)
	outcome := outcomeOf(err)
	h.o.Metrics.Requests.WithLabelValues(name, outcome).Inc()
	attrs := []slog.Attr{
		slog.String(keyRequestID, reqID), slog.String(keyWebhook, name),
		slog.String(keySource, r.RemoteAddr), slog.String(keyOutcome, outcome),
	}
	if err != nil {
		pe := problem.As(err)
		attrs = append(attrs, slog.Int(keyStatus, pe.Status()), slog.String(keyReason, errText(pe.Err)))
		if ep == nil {
			attrs = append(attrs, slog.String(keyPath, truncate(r.URL.Path, 200)))
		}
		level := slog.LevelWarn // a failed check: possibly an attack
		switch {
		case pe.Status() >= 500:
			level = slog.LevelError
		case outcome == "unknown_path" || outcome == "method":
			level = slog.LevelInfo // internet background noise
		}
		h.o.Logger.LogAttrs(r.Context(), level, "webhook refused", attrs...)
		if pe.Status() == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", http.MethodPost)
		}
		problem.Write(w, reqID, err)
		return
	}
	attrs = append(attrs, slog.String(keyMsgID, res.msgID), slog.String(keyJobID, res.jobID))
	h.o.Logger.LogAttrs(r.Context(), slog.LevelInfo, "webhook accepted", attrs...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if res.challenge != "" {
		_ = json.NewEncoder(w).Encode(map[string]string{"challenge": res.challenge})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "accepted", "id": res.msgID})
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, ep *endpoint) (accepted, error) {
	if ep == nil {
		return accepted{}, rejected(http.StatusNotFound, "no webhook at this path", errUnknownPath)
	}
	now := h.o.Clock.Now()
	if !ep.limiter.allow(sourceKey(r.RemoteAddr), now) {
		return accepted{}, &problem.Error{Code: problem.RateLimited, Detail: "too many requests from this source", RetryAfter: 1, Err: errRateLimited}
	}
	if r.Method != http.MethodPost {
		return accepted{}, rejected(http.StatusMethodNotAllowed, "method", errMethod)
	}
	ct := r.Header.Get("Content-Type")
	if !ep.acceptsContentType(ct) {
		return accepted{}, rejected(http.StatusBadRequest, "content type", fmt.Errorf("%w: %q", errContentType, truncate(ct, 100)))
	}
	body, err := readBody(w, r, ep.maxBody)
	if err != nil {
		return accepted{}, err
	}
	secrets, err := h.resolve(r.Context(), ep)
	if err != nil {
		return accepted{}, err
	}
	msgID, err := ep.verifier.Verify(r.Header, body, secrets, now, ep.tolerance)
	if err != nil {
		return accepted{}, h.verifyFailed(ep, r.RemoteAddr, now, err)
	}
	if ep.schema != nil {
		if err := checkSchema(ep.schema, body); err != nil {
			return accepted{}, rejected(http.StatusBadRequest, "schema", err)
		}
	}
	if c, ok := slackChallenge(ep.cfg.Scheme, body); ok {
		return accepted{msgID: msgID, challenge: c}, nil
	}
	// Store work must not be cut short by a vendor hanging up: a replay id
	// written without its job would refuse the vendor's retry.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	keys := replayKeys(ep, msgID, body)
	if err := h.markSeen(ctx, ep, keys, msgID); err != nil {
		return accepted{}, err
	}
	res := accepted{msgID: msgID}
	if ep.cfg.ForwardTo == "" {
		return res, nil
	}
	res.jobID, err = h.enqueue(ctx, ep, msgID, r.Header, body, now)
	if err != nil {
		h.forget(ctx, ep, keys, msgID)
		return accepted{}, err
	}
	if h.o.Enqueued != nil {
		h.o.Enqueued()
	}
	return res, nil
}

func (ep *endpoint) acceptsContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch {
	case mt == "application/json", strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"):
		return true
	case mt == "application/x-www-form-urlencoded":
		return ep.forms
	}
	return false
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, rejected(http.StatusBadRequest, "body too large", errTooLarge)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, rejected(http.StatusBadRequest, "body too large", errTooLarge)
		}
		return nil, rejected(http.StatusBadRequest, "body", fmt.Errorf("%w: %w", errBody, err))
	}
	return body, nil
}

// resolve reads every configured secret. A secret that cannot be read is
// skipped (fewer secrets can only accept less); none at all is a 503.
func (h *Handler) resolve(ctx context.Context, ep *endpoint) ([]secret.Value, error) {
	secrets := make([]secret.Value, 0, len(ep.cfg.Secrets))
	var errs []error
	for _, ref := range ep.cfg.Secrets {
		v, err := h.o.Secrets(ctx, ref)
		if err != nil {
			errs = append(errs, fmt.Errorf("secret %s: %w", ref.Ref(), err))
			continue
		}
		secrets = append(secrets, v)
	}
	if len(errs) > 0 && len(secrets) > 0 {
		h.o.Logger.LogAttrs(ctx, slog.LevelWarn, "webhook secret unavailable, verifying with the others",
			slog.String(keyWebhook, ep.name), slog.String(keyReason, errors.Join(errs...).Error()))
	}
	if len(secrets) == 0 {
		return nil, problem.Wrap(problem.CredentialUnavailable, "webhook secret unavailable", errors.Join(errs...))
	}
	return secrets, nil
}

func (h *Handler) verifyFailed(ep *endpoint, source string, now time.Time, err error) error {
	switch {
	case errors.Is(err, ErrSecret):
		return problem.Wrap(problem.CredentialUnavailable, "webhook secret unusable", err)
	case errors.Is(err, ErrTimestamp):
		return rejected(http.StatusUnauthorized, "timestamp", err)
	}
	if ep.burst.record(now) {
		h.o.Metrics.Alerts.WithLabelValues(ep.name, "bad_signature_burst").Inc()
		h.o.Logger.LogAttrs(context.Background(), slog.LevelError, "webhook bad signature burst",
			slog.String(keyWebhook, ep.name), slog.String(keySource, source),
			slog.Int("count", ep.burst.threshold), slog.Duration("window", ep.burst.window))
		h.o.OnEvent(Event{
			Kind: EventBadSignatureBurst, Webhook: ep.name, Source: source, Time: now,
			Count: ep.burst.threshold, Window: ep.burst.window,
			Detail: fmt.Sprintf("%d bad signatures within %s", ep.burst.threshold, ep.burst.window),
		})
	}
	if errors.Is(err, ErrMalformed) {
		return rejected(http.StatusBadRequest, "signature", err)
	}
	return rejected(http.StatusUnauthorized, "signature", err)
}

// replayKeys are the keys a message is remembered under. Schemes that sign
// no timestamp are also keyed on their signed content: GitHub's delivery id
// is not signed, so a replay under a made-up id must still be caught.
func replayKeys(ep *endpoint, msgID string, body []byte) []string {
	keys := []string{replayKey(ep.name, msgID)}
	if !ep.verifier.SignsTimestamp() {
		if c := contentID(body); c != msgID {
			keys = append(keys, replayKey(ep.name, c))
		}
	}
	return keys
}

// markSeen records the message for the replay window, refusing one already
// there.
func (h *Handler) markSeen(ctx context.Context, ep *endpoint, keys []string, msgID string) error {
	ttl := h.o.UntimedReplayTTL
	if ep.verifier.SignsTimestamp() {
		// A timestamp is accepted within ±tolerance of now, so a message can
		// be played again for at most 2×tolerance after it is first seen.
		ttl = 2 * ep.tolerance
	}
	var set []string
	for _, key := range keys {
		fresh, err := h.o.Store.SetNX(ctx, key, []byte{1}, ttl)
		switch {
		case err != nil && h.o.ReplayFailOpen:
			h.o.Logger.LogAttrs(ctx, slog.LevelWarn, "webhook replay check skipped: state store unavailable (fail_open)",
				slog.String(keyWebhook, ep.name), slog.String(keyMsgID, msgID), slog.String(keyReason, err.Error()))
			return nil
		case err != nil:
			h.forget(ctx, ep, set, msgID)
			return rejected(http.StatusServiceUnavailable, "temporarily unavailable", fmt.Errorf("%w: replay check: %w", errUnavailable, err))
		case !fresh:
			return rejected(http.StatusUnauthorized, "replay", fmt.Errorf("%w: id %s", ErrReplay, msgID))
		}
		set = append(set, key)
	}
	return nil
}

// forget removes replay keys of a message that was not accepted after all,
// so the vendor's retry is not taken for a replay.
func (h *Handler) forget(ctx context.Context, ep *endpoint, keys []string, msgID string) {
	for _, key := range keys {
		if err := h.o.Store.Delete(ctx, key); err != nil {
			h.o.Logger.LogAttrs(ctx, slog.LevelError, "webhook replay id left behind: the vendor's retry will be refused as a replay",
				slog.String(keyWebhook, ep.name), slog.String(keyMsgID, msgID), slog.String(keyReason, err.Error()))
		}
	}
}

func (h *Handler) enqueue(ctx context.Context, ep *endpoint, msgID string, hdr http.Header, body []byte, now time.Time) (string, error) {
	payload, err := json.Marshal(forwardJob{
		Webhook: ep.name, MsgID: msgID, ContentType: hdr.Get("Content-Type"),
		Headers: passHeaders(ep.cfg.Scheme, hdr), Body: body, Received: now,
	})
	if err != nil {
		return "", fmt.Errorf("%w: %w", errUnavailable, err)
	}
	id := newID("whj_")
	err = h.o.Store.Enqueue(ctx, QueueName(ep.name), store.Job{
		ID: id, Owner: "webhook:" + ep.name, Payload: payload, Created: now,
	})
	if err != nil {
		return "", rejected(http.StatusServiceUnavailable, "temporarily unavailable", fmt.Errorf("%w: enqueue: %w", errUnavailable, err))
	}
	return id, nil
}

// slackChallenge answers Slack's Events API url_verification handshake
// (already verified by then), which Slack sends once when the Request URL is
// set and expects echoed back.
func slackChallenge(scheme string, body []byte) (string, bool) {
	if scheme != "slack" || !json.Valid(body) {
		return "", false
	}
	var m struct {
		Type      string `json:"type"`
		Challenge string `json:"challenge"`
	}
	if json.Unmarshal(body, &m) != nil || m.Type != "url_verification" || m.Challenge == "" {
		return "", false
	}
	return m.Challenge, true
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
