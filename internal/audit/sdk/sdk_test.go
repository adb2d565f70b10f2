package sdk

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
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

func TestGoldenScan(t *testing.T) {
	for _, format := range []string{"table", "json", "markdown"} {
		t.Run(format, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Command([]string{"testdata/services", "--osv", "testdata/osv", "--format", format}, &out, &errb)
			if code != 1 {
				t.Errorf("exit %d, want 1 (known advisories); stderr %s", code, errb.String())
			}
			golden(t, "scan."+format+".golden", out.Bytes())
		})
	}
}

func TestCommandExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"warnings-only-pass", []string{"testdata/services/assistant-node"}, 0},
		{"warnings-fail-strict", []string{"--strict", "testdata/services/assistant-node"}, 1},
		{"missing-go-sum-strict", []string{"--strict", "testdata/services/billing-go/go.mod", "--sdk", "github.com/google/uuid"}, 1},
		{"advisory-fails", []string{"testdata/services/notify-py", "--osv", "testdata/osv"}, 1},
		{"no-path", []string{"--osv", "testdata/osv"}, 2},
		{"missing-path", []string{"testdata/nope"}, 2},
		{"bad-osv-dir", []string{"testdata/services", "--osv", "testdata/nope"}, 2},
		{"bad-format", []string{"testdata/services", "--format", "xml"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if got := Command(tc.args, &out, &errb); got != tc.want {
				t.Errorf("exit %d, want %d\n%s%s", got, tc.want, out.String(), errb.String())
			}
		})
	}
}

func TestMatcher(t *testing.T) {
	tests := []struct {
		name, eco, pkg string
		m              Matcher
		want           bool
	}{
		{"npm-exact", NPM, "stripe", Matcher{}, true},
		{"npm-scope-prefix", NPM, "@aws-sdk/client-s3", Matcher{}, true},
		{"npm-not-an-sdk", NPM, "express", Matcher{}, false},
		{"go-major-version-suffix", Go, "github.com/stripe/stripe-go/v82", Matcher{}, true},
		{"go-lookalike-is-not", Go, "github.com/stripe/stripe-go-fork", Matcher{}, false},
		{"pypi-normalised", PyPI, "Simple_Salesforce", Matcher{}, true},
		{"extra-name", NPM, "acme-client", Matcher{Extra: []string{"acme-client"}}, true},
		{"all", PyPI, "requests", Matcher{All: true}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.m.IsSDK(tc.eco, tc.pkg); got != tc.want {
				t.Errorf("IsSDK(%s, %s) = %v, want %v", tc.eco, tc.pkg, got, tc.want)
			}
		})
	}
}

var requirementSeeds = []string{
	"twilio==8.10.0 \\\n    --hash=sha256:1111\nsendgrid>=6.0\n",
	"requests[socks]==2.31.0 ; python_version >= '3.8'  # comment\n-r other.txt\n-e .\n",
	"stripe===7.1.0\nopenai==1.*\nboto3\n",
	"not a requirement line!\n",
}

func TestParseRequirements(t *testing.T) {
	type dep struct {
		Name, Spec, Version string
		Pinned, Integrity   bool
		Line                int
	}
	tests := []struct {
		name    string
		in      string
		want    []dep
		wantErr bool
	}{
		{name: "hash-on-continued-line", in: requirementSeeds[0], want: []dep{
			{"twilio", "==8.10.0", "8.10.0", true, true, 1}, {"sendgrid", ">=6.0", "", false, false, 3}}},
		{name: "extras-markers-options", in: requirementSeeds[1], want: []dep{{"requests", "==2.31.0", "2.31.0", true, false, 1}}},
		{name: "wildcard-and-bare-unpinned", in: requirementSeeds[2], want: []dep{
			{"stripe", "===7.1.0", "7.1.0", true, false, 1}, {"openai", "==1.*", "", false, false, 2}, {"boto3", "", "", false, false, 3}}},
		{name: "garbage", in: requirementSeeds[3], wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			deps, err := ParseRequirements("requirements.txt", []byte(tc.in))
			if tc.wantErr {
				if !errors.Is(err, ErrParse) {
					t.Errorf("err %v, want ErrParse", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []dep
			for _, d := range deps {
				got = append(got, dep{d.Name, d.Spec, d.Version, d.Pinned, d.Integrity, d.Line})
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestExactNPM(t *testing.T) {
	for spec, want := range map[string]bool{"1.2.3": true, "=1.2.3": true, "v1.2.3-beta.1": true, "^1.2.3": false, "~1.2": false,
		"1.x": false, "latest": false, ">=1 <2": false, "1.2": false, "git+https://x/y.git#abc": false, "": false} {
		t.Run(strings.ReplaceAll(spec, " ", "_"), func(t *testing.T) {
			if _, got := exactNPM(spec); got != want {
				t.Errorf("exactNPM(%q) = %v, want %v", spec, got, want)
			}
		})
	}
}

func TestPEP440Order(t *testing.T) {
	// Ascending, from PEP 440's own examples.
	order := []string{"1.0.dev456", "1.0a1", "1.0a2.dev456", "1.0a12.dev456", "1.0a12", "1.0b1.dev456", "1.0b2",
		"1.0b2.post345.dev456", "1.0b2.post345", "1.0rc1.dev456", "1.0rc1", "1.0", "1.0+abc.5", "1.0.post456.dev34",
		"1.0.post456", "1.0.15", "1.1.dev1", "1!0.1"}
	for i := 0; i+1 < len(order); i++ {
		a, err := ParsePEP440(order[i])
		if err != nil {
			t.Fatalf("%s: %v", order[i], err)
		}
		b, err := ParsePEP440(order[i+1])
		if err != nil {
			t.Fatalf("%s: %v", order[i+1], err)
		}
		if ComparePEP440(a, b) >= 0 || ComparePEP440(b, a) <= 0 {
			t.Errorf("want %s < %s", order[i], order[i+1])
		}
	}
	eq := [][2]string{{"1.0", "1.0.0"}, {"1.0RC1", "1.0rc1"}, {"1.0-1", "1.0.post1"}, {"v2.0", "2.0"}}
	for _, p := range eq {
		a, _ := ParsePEP440(p[0])
		b, _ := ParsePEP440(p[1])
		if ComparePEP440(a, b) != 0 {
			t.Errorf("want %s == %s", p[0], p[1])
		}
	}
	for _, bad := range []string{"", "latest", "1.0-beta-x", "99999999999999999999"} {
		if _, err := ParsePEP440(bad); err == nil {
			t.Errorf("ParsePEP440(%q) accepted", bad)
		}
	}
}

func TestOSVRanges(t *testing.T) {
	o, err := LoadOSV("testdata/osv")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, eco, pkg, version string
		want                    []string
	}{
		{"npm-inside-range", NPM, "stripe", "14.5.0", []string{"PCTEST-0001"}},
		{"npm-at-fix", NPM, "stripe", "14.6.0", nil},
		{"npm-before-introduced", NPM, "stripe", "13.9.9", nil},
		{"pypi-name-normalised-listed-version", PyPI, "twilio", "8.10.0", []string{"PCTEST-0002"}},
		{"pypi-range-before-prerelease-fix", PyPI, "twilio", "8.11.0.dev1", []string{"PCTEST-0002"}},
		{"pypi-fixed", PyPI, "twilio", "8.11.0", nil},
		{"go-v-prefix", Go, "github.com/stripe/stripe-go/v76", "v76.4.9", []string{"PCTEST-0003"}},
		{"go-fixed", Go, "github.com/stripe/stripe-go/v76", "v76.8.0", nil},
		{"other-ecosystem-same-name", PyPI, "stripe", "14.5.0", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, m := range o.Affecting(tc.eco, tc.pkg, tc.version) {
				got = append(got, m.ID)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	if o.Records != 3 {
		t.Errorf("records %d, want 3 (the withdrawn one left out)", o.Records)
	}
}
