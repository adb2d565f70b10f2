package secret

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const canary = "sk_live_CANARY_1234567890"

func TestValueNeverPrints(t *testing.T) {
	v := New(canary)
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("msg", "v", v, "p", &v)
	j, _ := json.Marshal(map[string]any{"v": v})
	outs := []string{
		fmt.Sprint(v), fmt.Sprintf("%v %+v %#v %s %q %x", v, v, v, v, v, v),
		fmt.Errorf("wrap: %v", v).Error(), errors.New(fmt.Sprint(v)).Error(),
		buf.String(), string(j), fmt.Sprintf("%v", struct{ S Value }{v}),
	}
	for _, o := range outs {
		if strings.Contains(o, canary) {
			t.Errorf("leaked: %s", o)
		}
	}
	if v.Reveal() != canary {
		t.Error("Reveal lost the value")
	}
}

func TestScrubber(t *testing.T) {
	s := NewScrubber()
	s.Add(New(canary), New("abc"))
	got := s.Scrub("token=" + canary + " short=abc")
	if want := "token=REDACTED short=abc"; got != want {
		t.Errorf("Scrub = %q, want %q", got, want)
	}
	var nilS *Scrubber
	if nilS.Scrub("x") != "x" {
		t.Error("nil scrubber must pass through")
	}
}
