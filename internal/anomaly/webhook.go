package anomaly

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// webhookSink posts events as JSON from its own goroutine. The URL is never
// logged or put in an error: a Slack incoming-webhook URL is a credential.
type webhookSink struct {
	h     *Hub
	index string
	url   string
	slack bool
	queue chan Event

	mu     sync.Mutex
	closed bool
}

func (h *Hub) startWebhook(i int, url string, slack bool) *webhookSink {
	s := &webhookSink{h: h, index: strconv.Itoa(i), url: url, slack: slack, queue: make(chan Event, webhookQueue)}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for e := range s.queue {
			s.post(e)
		}
	}()
	return s
}

func (s *webhookSink) deliver(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.h.m.suppressed.WithLabelValues("closed").Inc()
		return
	}
	select {
	case s.queue <- e:
	default:
		s.h.m.suppressed.WithLabelValues("queue_full").Inc()
	}
}

func (s *webhookSink) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.queue)
	}
}

func (s *webhookSink) post(e Event) {
	body, err := s.payload(e)
	if err != nil {
		s.failed("encode", nil)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		s.failed("request", nil)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "portcullis-alerts")
	resp, err := s.h.client.Do(req)
	if err != nil {
		s.failed(transportCause(err), nil)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		s.failed("status", &resp.StatusCode)
		return
	}
	s.h.m.deliveries.WithLabelValues(s.index, "ok").Inc()
}

func (s *webhookSink) failed(cause string, status *int) {
	s.h.m.deliveries.WithLabelValues(s.index, "error").Inc()
	attrs := []any{slog.String("sink", "alerts.sinks["+s.index+"]"), slog.String("cause", cause)}
	if status != nil {
		attrs = append(attrs, slog.Int("status", *status))
	}
	s.h.logger.Warn("alert webhook delivery failed", attrs...)
}

// transportCause names a delivery failure without err.Error(), which quotes
// the URL.
func transportCause(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "transport"
}

func (s *webhookSink) payload(e Event) ([]byte, error) {
	var v any = e
	if s.slack {
		v = struct {
			Text string `json:"text"`
		}{slackText(e)}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // Slack escapes its own markup (slackText); keep the JSON readable
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// slackText renders an event as Slack mrkdwn, escaping the three characters
// Slack treats as markup.
func slackText(e Event) string {
	esc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	var b strings.Builder
	b.WriteString(":rotating_light: *")
	b.WriteString(esc.Replace(string(e.Kind)))
	b.WriteString("*")
	for _, part := range []string{e.Integration, e.Route, e.Caller} {
		if part != "" {
			b.WriteString(" · ")
			b.WriteString(esc.Replace(part))
		}
	}
	b.WriteString("\n")
	b.WriteString(esc.Replace(e.Message))
	return b.String()
}
