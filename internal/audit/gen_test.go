package audit

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/store"
)

// genUsage makes the usage records of testdata/usage.jsonl: three months of
// calls through examples/portcullis.yaml as of auditNow, built to show each
// usage finding once (see the comments).
func genUsage() []store.UsageRecord {
	rng := rand.New(rand.NewPCG(8, 2026))
	var out []store.UsageRecord
	add := func(t time.Time, caller, integ, method, route string, latency float64, failed bool, version string, scopes []string) {
		status := 200
		if failed {
			status = 503
		}
		out = append(out, store.UsageRecord{Time: t, Caller: caller, Integration: integ, Route: route, Method: method,
			Status: status, VendorFailed: failed, LatencyMS: latency, CredentialVersion: version, Scopes: scopes})
	}
	start := time.Date(2026, 7, 20, 0, 0, 0, 0, time.UTC)
	for day := start; day.Before(auditNow); day = day.Add(24 * time.Hour) {
		at := func() time.Time { return day.Add(time.Duration(rng.IntN(86400)) * time.Second) }
		// payments: version 7 since 2026-08-01, older than max_age 90d on
		// 2026-11-25; /v1/refunds never used; October breaks the SLA
		// (uptime 99.99%, p99 800ms).
		version := "6"
		if !day.Before(time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)) {
			version = "7"
		}
		october := day.Month() == time.October
		for range 4 {
			lat := 120 + rng.Float64()*250
			if october && rng.IntN(20) == 0 {
				lat = 900 + rng.Float64()*400
			}
			add(at(), "billing", "payments", "POST", "/v1/charges", lat, october && day.Day() == 14 && rng.IntN(2) == 0, version, nil)
		}
		add(at(), "billing", "payments", "GET", "/v1/charges/{id}", 60+rng.Float64()*90, false, version, nil)
		// sms: every day, version PN3 since 2026-10-01.
		smsVersion := "PN2"
		if day.Month() >= time.October {
			smsVersion = "PN3"
		}
		add(at(), "notifications", "sms", "POST", "/Accounts/{account}/Messages.json", 200+rng.Float64()*300, false, smsVersion, nil)
		// maps: checkout stopped calling on 2026-09-20 (a leftover key).
		if day.Before(time.Date(2026, 9, 20, 0, 0, 0, 0, time.UTC)) {
			add(at(), "checkout", "maps", "GET", "/maps/api/geocode/json", 40+rng.Float64()*60, false, "k2", nil)
		}
		// ai: every other day, version 4 since 2026-09-15.
		if day.Day()%2 == 0 {
			aiVersion := "3"
			if !day.Before(time.Date(2026, 9, 15, 0, 0, 0, 0, time.UTC)) {
				aiVersion = "4"
			}
			add(at(), "assistant", "ai", "POST", "/v1/chat/completions", 1500+rng.Float64()*6000, false, aiVersion, nil)
		}
		// crm: reads only (the PATCH grant is unused); the token carries a
		// scope the config does not request.
		add(at(), "sales-sync", "crm", "GET", "/services/data/v61.0/sobjects/Account/{id}", 150+rng.Float64()*200, false,
			"token-"+day.Format("0102"), []string{"api", "refresh_token"})
	}
	return out
}

func TestGenerateUsage(t *testing.T) {
	var b bytes.Buffer
	if err := WriteUsage(&b, genUsage()); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("testdata/usage.jsonl", b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile("testdata/usage.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b.Bytes()) {
		t.Error("testdata/usage.jsonl is not what genUsage makes: run go test -update")
	}
}
