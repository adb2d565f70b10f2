package gateway

import (
	"strings"
	"sync"
	"testing"
)

// TestRequestIDs: a well-formed caller id is kept, any other is replaced;
// generated ids are 24 characters of the lower base32 alphabet and never
// handed out twice, also when many calls draw them at once across block
// boundaries.
func TestRequestIDs(t *testing.T) {
	if got := requestID("req-Caller_1.2"); got != "req-Caller_1.2" {
		t.Errorf("well-formed caller id replaced: %q", got)
	}
	for _, bad := range []string{"", "has space", "semi;colon", strings.Repeat("a", maxRequestIDLen+1)} {
		if got := requestID(bad); got == bad || len(got) != idLen {
			t.Errorf("requestID(%q) = %q, want a generated id", bad, got)
		}
	}
	const workers, each = 8, 5*idsPerBlock + 3
	ids := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				ids[w] = append(ids[w], requestID(""))
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, list := range ids {
		for _, id := range list {
			if len(id) != idLen || strings.Trim(id, "abcdefghijklmnopqrstuvwxyz234567") != "" {
				t.Fatalf("malformed id %q", id)
			}
			if seen[id] {
				t.Fatalf("id %q handed out twice", id)
			}
			seen[id] = true
		}
	}
}
