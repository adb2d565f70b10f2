package bench_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRunShCleanupExitsZero runs run.sh's own cleanup function, as its EXIT
// trap does, under the script's `set -euo pipefail`, with a server that is
// still running when the script ends. The script's exit status after its
// report is whatever that trap leaves: it must be 0. (It was 2: bash reaps
// the killed server, its /proc entry vanishes, and the failed read of it
// ended the trap under set -e.)
func TestRunShCleanupExitsZero(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	src, err := os.ReadFile("run.sh")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	start := strings.Index(text, "\ncleanup() {\n")
	if start < 0 {
		t.Fatal("run.sh has no cleanup() function")
	}
	end := strings.Index(text[start:], "\n}\n")
	if end < 0 {
		t.Fatal("run.sh: cleanup() is not closed by a line with }")
	}
	script := "set -euo pipefail\npids=()\n" + text[start:start+end+3] +
		"trap cleanup EXIT\nsleep 60 &\npids+=($!)\necho report\n"
	out, err := exec.Command(bash, "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("script with run.sh's cleanup trap: %v (want exit status 0); output:\n%s", err, out)
	}
	if strings.TrimSpace(string(out)) != "report" {
		t.Errorf("output %q, want just the report line", out)
	}
}
