package audit

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/store"
)

var usageSeeds = []string{
	`{"Time":"2026-11-20T12:00:00Z","Caller":"billing","Integration":"payments","Route":"/v1/charges","Method":"POST","Status":200,"LatencyMS":120.5,"CredentialVersion":"7"}`,
	`{"time":"2026-11-20T12:00:00Z","integration":"crm","scopes":["api"]}` + "\n\n",
	`{"Time":"2026-11-20T12:00:00Z","Integration":"x","Secret":"sk_live_abc"}`,
	`{"Time":"yesterday","Integration":"x"}`,
	`{"Integration":"x"}`,
	`{"Time":"2026-11-20T12:00:00Z","Integration":"x"`,
}

func TestReadUsage(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int
		wantErr string
	}{
		{name: "records-sorted", in: usageSeeds[0] + "\n" + strings.Replace(usageSeeds[0], "11-20", "11-19", 1) + "\n", want: 2},
		{name: "lower-case-keys-and-blank-lines", in: usageSeeds[1], want: 1},
		{name: "unknown-field-refused-without-echo", in: usageSeeds[2], wantErr: "line 1: not a usage record (unknown field or bad value)"},
		{name: "bad-time", in: usageSeeds[3], wantErr: "line 1"},
		{name: "missing-time", in: usageSeeds[4], wantErr: "Time and Integration are required"},
		{name: "truncated", in: "\n" + usageSeeds[5], wantErr: "line 2: not a usage record (truncated)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadUsage(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if !errors.Is(err, ErrBadUsage) || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "sk_live") {
					t.Errorf("err %v, want ErrBadUsage with %q and no echoed value", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(got) != tc.want {
				t.Fatalf("got %d records, %v; want %d", len(got), err, tc.want)
			}
			for i := 1; i < len(got); i++ {
				if got[i].Time.Before(got[i-1].Time) {
					t.Error("records not in time order")
				}
			}
		})
	}
}

func TestUsageRoundTrip(t *testing.T) {
	in := []store.UsageRecord{{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Caller: "c", Integration: "i", Route: "/r/{id}",
		Method: "GET", Status: 503, VendorFailed: true, LatencyMS: 12.5, CredentialVersion: "v", Scopes: []string{"a", "b"}}}
	var b bytes.Buffer
	if err := WriteUsage(&b, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadUsage(&b)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(in, []store.UsageRecord(out)); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
}

func FuzzReadUsage(f *testing.F) {
	for _, s := range usageSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ReadUsage(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrBadUsage) {
				t.Fatalf("error %v does not wrap ErrBadUsage", err)
			}
			return
		}
		for i, r := range recs {
			if r.Time.IsZero() || r.Integration == "" || i > 0 && r.Time.Before(recs[i-1].Time) {
				t.Fatalf("accepted record %d: %+v", i, r)
			}
		}
	})
}
