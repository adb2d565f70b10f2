package audit

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden files and generated data under testdata/")

var auditNow = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, d)
	}
}

// runAudit runs the command from the repository root, as the README does.
func runAudit(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir("../.."); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.Chdir(wd) }()
	var out, errb bytes.Buffer
	code := Command(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestGoldenExample(t *testing.T) {
	for _, format := range []string{"table", "json", "markdown"} {
		t.Run(format, func(t *testing.T) {
			code, out, errs := runAudit(t, "--config", "examples/portcullis.yaml", "--usage", "internal/audit/testdata/usage.jsonl",
				"--now", "2026-11-25", "--format", format)
			if code != 1 {
				t.Errorf("exit %d, want 1 (the example has errors to fix); stderr: %s", code, errs)
			}
			golden(t, "example."+format+".golden", []byte(out))
		})
	}
}

// TestEmbeddedStoreSource reads the same records through the embedded
// store the gateway writes, and must report the same findings.
func TestEmbeddedStoreSource(t *testing.T) {
	dir := t.TempDir()
	e, err := store.OpenEmbedded(dir, store.EmbeddedOptions{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.AppendUsage(t.Context(), genUsage()); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	_, fromFile, _ := runAudit(t, "--config", "examples/portcullis.yaml", "--usage", "internal/audit/testdata/usage.jsonl", "--now", "2026-11-25")
	code, fromStore, errs := runAudit(t, "--config", "examples/portcullis.yaml", "--data-dir", dir, "--now", "2026-11-25")
	if code != 1 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	strip := func(s string) string {
		_, rest, _ := strings.Cut(s, "unused-access window")
		return rest
	}
	if d := cmp.Diff(strip(fromFile), strip(fromStore)); d != "" {
		t.Errorf("embedded store and usage file disagree (-file +store):\n%s", d)
	}
	if !strings.Contains(fromStore, "embedded store in "+dir) {
		t.Errorf("report does not name its source:\n%s", fromStore[:200])
	}
}
