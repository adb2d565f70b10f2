package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
)

func usageSamples() []UsageRecord {
	at := time.Date(2026, 12, 3, 14, 5, 6, 789012345, time.FixedZone("X", -7*3600))
	return []UsageRecord{
		{Time: at, Caller: "billing", Integration: "payments", Route: "/v1/charges/{id}", Method: "POST", Status: 502,
			VendorFailed: true, LatencyMS: 12.345, CredentialVersion: "vault:kv/pay@7", Scopes: []string{"read", "write"}},
		{Time: at.Add(time.Millisecond).UTC(), Caller: "bench", Integration: "vendor", Route: "/v1/items/{id}", Method: "GET", Status: 200, LatencyMS: 0.412},
		{Time: at.Add(2 * time.Millisecond), Caller: "c", Integration: "i", Scopes: []string{}},
		{Time: at.Add(3 * time.Millisecond), Caller: "c", Integration: "i", Status: -1, LatencyMS: math.Inf(1)},
	}
}

// TestUsageReadsOldEncoding: a data file written before the wire encoding
// holds JSON values; ScanUsage reads them beside new ones, in key order.
func TestUsageReadsOldEncoding(t *testing.T) {
	e, err := OpenEmbedded(t.TempDir(), EmbeddedOptions{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	recs := usageSamples()[:3]
	// The old AppendUsage: json.Marshal per record, NextSequence per Put.
	err = e.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsage)
		for _, r := range recs[:2] {
			v, err := json.Marshal(r)
			if err != nil {
				return err
			}
			seq, _ := b.NextSequence()
			if err := b.Put(binary.BigEndian.AppendUint64(timeKey(r.Time), seq), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.AppendUsage(context.Background(), recs[2:]); err != nil {
		t.Fatal(err)
	}
	var got []UsageRecord
	err = e.ScanUsage(context.Background(), recs[0].Time.Add(-time.Hour), recs[2].Time.Add(time.Hour), func(r UsageRecord) error {
		got = append(got, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(recs, got); diff != "" {
		t.Errorf("ScanUsage (-want +got):\n%s", diff)
	}
	// The sequence goes on from the old records' NextSequence.
	_ = e.db.View(func(tx *bolt.Tx) error {
		if s := tx.Bucket(bucketUsage).Sequence(); s != 3 {
			t.Errorf("sequence = %d, want 3", s)
		}
		return nil
	})
}

func TestUsageCodecRoundTrip(t *testing.T) {
	for _, r := range append(usageSamples(), UsageRecord{}) {
		v, err := appendUsage(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeUsage(v)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(r, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
		// The same as the JSON an old version wrote, read back.
		j, _ := json.Marshal(r)
		var old UsageRecord
		if json.Unmarshal(j, &old) == nil {
			if diff := cmp.Diff(old, got); diff != "" {
				t.Errorf("differs from the JSON encoding (-json +wire):\n%s", diff)
			}
		}
	}
	if _, err := decodeUsage([]byte{0x02, 1}); err == nil {
		t.Error("an unknown encoding was accepted")
	}
}

func FuzzUsageCodec(f *testing.F) {
	f.Add(int64(1764770706789012345), 3600, "billing", "/v1/charges/{id}", "GET", 200, true, 0.412, "env:K@1", "read write")
	f.Add(int64(0), 0, "", "", "", 0, false, 0.0, "", "")
	f.Fuzz(func(t *testing.T, ns int64, offset int, caller, route, method string, status int, failed bool, lat float64, cred, scopes string) {
		r := UsageRecord{Time: time.Unix(0, ns).In(time.FixedZone("", (offset%86400)/60*60)), Caller: caller, Integration: caller + "i",
			Route: route, Method: method, Status: status, VendorFailed: failed, LatencyMS: lat, CredentialVersion: cred}
		if scopes != "" {
			r.Scopes = []string{scopes, caller}
		}
		v, err := appendUsage(nil, r)
		if err != nil {
			t.Skip(err) // a time MarshalBinary refuses
		}
		got, err := decodeUsage(v)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Time.Equal(r.Time) || got.Time.Format(time.RFC3339Nano) != r.Time.Format(time.RFC3339Nano) {
			t.Fatalf("time %v, want %v", got.Time, r.Time)
		}
		got.Time = r.Time
		if math.Float64bits(got.LatencyMS) != math.Float64bits(r.LatencyMS) {
			t.Fatalf("latency %v, want %v", got.LatencyMS, r.LatencyMS)
		}
		got.LatencyMS, r.LatencyMS = 0, 0
		if diff := cmp.Diff(r, got); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
		// Any prefix of a value either decodes or fails; it never panics.
		for i := range v {
			_, _ = decodeUsage(v[:i])
		}
	})
}
