package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portcullis-dev/portcullis/internal/store"
)

func usageRec(at time.Time, caller string) store.UsageRecord {
	return store.UsageRecord{Time: at, Caller: caller, Integration: "payments", Route: "/v1/charges/{id}",
		Method: "GET", Status: 200, LatencyMS: 12.5, CredentialVersion: "v3", Scopes: []string{"charges:read"}}
}

func scanAll(t *testing.T, s store.Store, from, to time.Time) []store.UsageRecord {
	t.Helper()
	var got []store.UsageRecord
	if err := s.ScanUsage(ctx(), from, to, func(r store.UsageRecord) error { got = append(got, r); return nil }); err != nil {
		t.Fatalf("ScanUsage: %v", err)
	}
	return got
}

func mustAppend(t *testing.T, s store.Store, recs ...store.UsageRecord) {
	t.Helper()
	if err := s.AppendUsage(ctx(), recs); err != nil {
		t.Fatalf("AppendUsage: %v", err)
	}
}

var usageCmp = []cmp.Option{cmpopts.EquateApproxTime(0), cmpopts.EquateEmpty()}

// usageBase is recent (inside any default retention) and has a
// sub-microsecond part, which backends must keep.
func usageBase() time.Time { return time.Now().Add(-time.Hour).Truncate(time.Second).Add(123) }

var usageCases = []suiteCase{
	{name: "usage/scan-returns-time-order-with-all-fields", fn: func(t *testing.T, s store.Store) {
		base := usageBase()
		r0, r1, r2 := usageRec(base, "a"), usageRec(base.Add(time.Second), "b"), usageRec(base.Add(2*time.Second), "c")
		r1.Status, r1.VendorFailed, r1.Method, r1.Scopes = 503, true, "POST", nil
		mustAppend(t, s, r2, r0)
		mustAppend(t, s, r1)
		got := scanAll(t, s, base, base.Add(time.Hour))
		if diff := cmp.Diff([]store.UsageRecord{r0, r1, r2}, got, usageCmp...); diff != "" {
			t.Errorf("ScanUsage (-want +got):\n%s", diff)
		}
	}},
	{name: "usage/scan-range-is-half-open", fn: func(t *testing.T, s store.Store) {
		base := usageBase()
		for i := range 4 {
			mustAppend(t, s, usageRec(base.Add(time.Duration(i)*time.Second), fmt.Sprint(i)))
		}
		tests := []struct {
			name     string
			from, to time.Duration
			want     []string
		}{
			{"from-inclusive-to-exclusive", time.Second, 3 * time.Second, []string{"1", "2"}},
			{"one-nanosecond-past", time.Second + 1, 3*time.Second + 1, []string{"2", "3"}},
			{"one-nanosecond-wide", 2 * time.Second, 2*time.Second + 1, []string{"2"}},
			{"empty-window", 2*time.Second + 1, 3 * time.Second, nil},
			{"everything", -time.Hour, time.Hour, []string{"0", "1", "2", "3"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				var callers []string
				for _, r := range scanAll(t, s, base.Add(tc.from), base.Add(tc.to)) {
					callers = append(callers, r.Caller)
				}
				if diff := cmp.Diff(tc.want, callers, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("callers (-want +got):\n%s", diff)
				}
			})
		}
	}},
	{name: "usage/scan-stops-on-callback-error", fn: func(t *testing.T, s store.Store) {
		base := usageBase()
		mustAppend(t, s, usageRec(base, "a"), usageRec(base.Add(time.Second), "b"))
		stop := errors.New("enough")
		calls := 0
		err := s.ScanUsage(ctx(), base, base.Add(time.Hour), func(store.UsageRecord) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("ScanUsage = %v after %d calls, want the callback's error after 1", err, calls)
		}
	}},
	{name: "usage/scan-many-records-with-equal-times", fn: func(t *testing.T, s store.Store) {
		// More than one page for every backend, with a run of equal
		// timestamps straddling page boundaries.
		base := usageBase()
		var recs []store.UsageRecord
		for i := range 1300 {
			at := base.Add(time.Duration(i) * time.Millisecond)
			if i >= 300 && i < 1000 {
				at = base.Add(300 * time.Millisecond)
			}
			recs = append(recs, usageRec(at, fmt.Sprint(i)))
		}
		mustAppend(t, s, recs[:700]...)
		mustAppend(t, s, recs[700:]...)
		got := scanAll(t, s, base, base.Add(time.Hour))
		seen := map[string]bool{}
		for i, r := range got {
			seen[r.Caller] = true
			if i > 0 && r.Time.Before(got[i-1].Time) {
				t.Fatalf("record %d at %v comes after one at %v", i, r.Time, got[i-1].Time)
			}
		}
		if len(got) != len(recs) || len(seen) != len(recs) {
			t.Errorf("scanned %d records (%d distinct), want %d", len(got), len(seen), len(recs))
		}
	}},
	{name: "usage/append-nothing-is-ok", fn: func(t *testing.T, s store.Store) {
		mustAppend(t, s)
		if got := scanAll(t, s, time.Unix(0, 0), time.Now().Add(time.Hour)); len(got) != 0 {
			t.Errorf("scanned %d records from an empty store", len(got))
		}
	}},
}
