package conf

import "testing"

func TestReportPaths(t *testing.T) {
	r := NewReport("integrations.pay")
	eg := r.At("egress")
	eg.Errorf("allow[0]", "bad host %q", "x")
	eg.At("allow").Warnf("[1]", "wildcard")
	r.Warnf("", "no credential")
	got := r.Problems()
	want := []Problem{
		{Severity: Error, Path: "integrations.pay.egress.allow[0]", Msg: `bad host "x"`},
		{Severity: Warning, Path: "integrations.pay.egress.allow[1]", Msg: "wildcard"},
		{Severity: Warning, Path: "integrations.pay", Msg: "no credential"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d problems %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("problem %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if !r.HasErrors() || NewReport("").HasErrors() {
		t.Error("HasErrors: want true for a report with an error, false for an empty one")
	}
}

func TestReportCoded(t *testing.T) {
	r := NewReport("integrations.pay")
	r.Coded(NoTimeouts).Warnf("timeouts", "no timeouts set")
	r.Coded(PlainSecret).At("credential").Errorf("secret", "plain")
	r.Warnf("", "uncoded")
	want := []Problem{
		{Severity: Warning, Code: NoTimeouts, Path: "integrations.pay.timeouts", Msg: "no timeouts set"},
		{Severity: Error, Code: PlainSecret, Path: "integrations.pay.credential.secret", Msg: "plain"},
		{Severity: Warning, Path: "integrations.pay", Msg: "uncoded"},
	}
	got := r.Problems()
	if len(got) != len(want) {
		t.Fatalf("got %d problems %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("problem %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestSeverityNamesRoundTrip(t *testing.T) {
	tests := []struct {
		sev  Severity
		name string
	}{
		{Info, "info"},
		{Warning, "warning"},
		{Error, "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.sev.MarshalText()
			if err != nil || string(b) != tt.name || tt.sev.String() != tt.name {
				t.Fatalf("MarshalText() = %q, %v; String() = %q; want %q", b, err, tt.sev.String(), tt.name)
			}
			var got Severity
			if err := got.UnmarshalText(b); err != nil || got != tt.sev {
				t.Errorf("UnmarshalText(%q) = %v, %v; want %v", b, got, err, tt.sev)
			}
		})
	}
	if _, err := ParseSeverity("critical"); err == nil {
		t.Error("ParseSeverity(critical): want an error")
	}
	var zero Problem
	if zero.Severity != Error {
		t.Errorf("zero Problem severity = %v, want error (fail closed)", zero.Severity)
	}
	if !(Info < Warning && Warning < Error) {
		t.Error("severities must order info < warning < error")
	}
}
