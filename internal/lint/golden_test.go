package lint

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

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

func TestGolden(t *testing.T) {
	inputs := []struct {
		name, file, src string
	}{
		{name: "example", file: "examples/portcullis.yaml", src: "../../examples/portcullis.yaml"},
		{name: "risky", file: "risky.yaml", src: "testdata/risky.yaml"},
		{name: "state", file: "state.yaml", src: "testdata/state.yaml"},
	}
	writers := []struct {
		ext   string
		write func(*bytes.Buffer, Report) error
	}{
		{"txt", func(b *bytes.Buffer, r Report) error { return WriteText(b, r) }},
		{"json", func(b *bytes.Buffer, r Report) error { return WriteJSON(b, r) }},
		{"sarif", func(b *bytes.Buffer, r Report) error { return WriteSARIF(b, r, "") }},
	}
	for _, in := range inputs {
		data, err := os.ReadFile(in.src)
		if err != nil {
			t.Fatal(err)
		}
		r := Check(in.file, data)
		for _, w := range writers {
			t.Run(in.name+"-"+w.ext, func(t *testing.T) {
				var b bytes.Buffer
				if err := w.write(&b, r); err != nil {
					t.Fatal(err)
				}
				if w.ext != "txt" && !json.Valid(b.Bytes()) {
					t.Fatalf("%s output is not JSON", w.ext)
				}
				golden(t, in.name+"."+w.ext+".golden", b.Bytes())
			})
		}
	}
}

// TestSARIFShape checks what GitHub code scanning needs of a result: a
// known rule at its index, a level, a message and a line ≥ 1.
func TestSARIFShape(t *testing.T) {
	data, err := os.ReadFile("testdata/risky.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteSARIF(&b, Check("risky.yaml", data), "1.2.3"); err != nil {
		t.Fatal(err)
	}
	var log sarifLog
	if err := json.Unmarshal(b.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || log.Runs[0].Tool.Driver.Version != "1.2.3" {
		t.Fatalf("log header: %+v", log)
	}
	run := log.Runs[0]
	if len(run.Results) == 0 {
		t.Fatal("no results")
	}
	for _, res := range run.Results {
		rule := run.Tool.Driver.Rules[res.RuleIndex]
		loc := res.Locations[0].PhysicalLocation
		if rule.ID != res.RuleID || res.Message.Text == "" || loc.Region.StartLine < 1 || loc.ArtifactLocation.URI != "risky.yaml" {
			t.Errorf("bad result %+v (rule at index: %s)", res, rule.ID)
		}
		if res.Level != "error" && res.Level != "warning" && res.Level != "note" {
			t.Errorf("level %q", res.Level)
		}
	}
}
