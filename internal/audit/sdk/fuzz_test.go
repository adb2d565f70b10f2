package sdk

import (
	"errors"
	"os"
	"testing"
)

func seedFile(f *testing.F, paths ...string) {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func mustWrapParse(t *testing.T, err error) {
	if err != nil && !errors.Is(err, ErrParse) {
		t.Fatalf("error %v does not wrap ErrParse", err)
	}
}

func FuzzParseGoMod(f *testing.F) {
	seedFile(f, "testdata/services/billing-go/go.mod")
	f.Add([]byte("module x\nrequire a.example/b v1.0.0\nreplace a.example/b => ../b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		deps, err := ParseGoMod("go.mod", data)
		mustWrapParse(t, err)
		for _, d := range deps {
			if d.Pinned && d.Version == "" {
				t.Fatalf("pinned without a version: %+v", d)
			}
		}
	})
}

func FuzzParseGoSum(f *testing.F) {
	seedFile(f, "testdata/services/billing-go/go.sum")
	f.Add([]byte("a b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ParseGoSum(data)
		mustWrapParse(t, err)
	})
}

func FuzzParsePackageJSON(f *testing.F) {
	seedFile(f, "testdata/services/checkout-node/package.json", "testdata/services/assistant-node/package.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		deps, err := ParsePackageJSON("package.json", data)
		mustWrapParse(t, err)
		for _, d := range deps {
			if d.Pinned != (d.Version != "") {
				t.Fatalf("pinned and version disagree: %+v", d)
			}
		}
	})
}

func FuzzParsePackageLock(f *testing.F) {
	seedFile(f, "testdata/services/checkout-node/package-lock.json")
	f.Add([]byte(`{"lockfileVersion":1,"dependencies":{"stripe":{"version":"1.0.0","integrity":"sha1-x"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ParsePackageLock(data)
		mustWrapParse(t, err)
	})
}

func FuzzParseRequirements(f *testing.F) {
	for _, s := range requirementSeeds {
		f.Add([]byte(s))
	}
	seedFile(f, "testdata/services/notify-py/requirements.txt")
	f.Fuzz(func(t *testing.T, data []byte) {
		deps, err := ParseRequirements("requirements.txt", data)
		mustWrapParse(t, err)
		for _, d := range deps {
			if d.Pinned {
				if _, err := ParsePEP440(d.Version); err != nil {
					t.Fatalf("pinned to a non-PEP 440 version: %+v", d)
				}
			}
		}
	})
}

func FuzzParsePyProject(f *testing.F) {
	seedFile(f, "testdata/services/crm-py/pyproject.toml")
	f.Add([]byte("[project]\ndependencies = [\"stripe==7.1.0\", \"openai>=1\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ParsePyProject("pyproject.toml", data)
		mustWrapParse(t, err)
	})
}

func FuzzParsePoetryLock(f *testing.F) {
	seedFile(f, "testdata/services/crm-py/poetry.lock")
	f.Add([]byte("[[package]]\nname = \"A_b\"\nversion = \"1\"\n[metadata.files]\nA_b = [{file = \"x\", hash = \"sha256:1\"}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ParsePoetryLock(data)
		mustWrapParse(t, err)
	})
}

func FuzzParseOSV(f *testing.F) {
	seedFile(f, "testdata/osv/PCTEST-0001.json", "testdata/osv/PCTEST-0002.json", "testdata/osv/PCTEST-0003.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseOSV(data)
		mustWrapParse(t, err)
		if err == nil {
			for _, af := range a.Affected {
				// Evaluating any parsed record must not panic.
				affects(af.Package.Ecosystem, af, "1.0.0")
			}
		}
	})
}

func FuzzPEP440(f *testing.F) {
	for _, s := range []string{"1.0.dev456", "1.0a12.dev456", "1.0b2.post345.dev456", "1!0.1", "1.0+abc.5", "v2.0", "1.0-1"} {
		f.Add(s, "1.0")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		va, errA := ParsePEP440(a)
		vb, errB := ParsePEP440(b)
		mustWrapParse(t, errA)
		mustWrapParse(t, errB)
		if errA != nil || errB != nil {
			return
		}
		if ComparePEP440(va, va) != 0 {
			t.Fatalf("%q != itself", a)
		}
		if ComparePEP440(va, vb) != -ComparePEP440(vb, va) {
			t.Fatalf("compare(%q, %q) is not antisymmetric", a, b)
		}
	})
}
