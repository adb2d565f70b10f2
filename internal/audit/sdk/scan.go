package sdk

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

// maxManifest bounds a manifest or lock file.
const maxManifest = 32 << 20

// skipDirs are never searched for manifests.
var skipDirs = map[string]bool{"node_modules": true, ".git": true, "vendor": true, ".venv": true, "venv": true, "__pycache__": true}

// Finding ids.
const (
	Unpinned       = "SC001"
	NoLockFile     = "SC002"
	NoIntegrity    = "SC003"
	KnownAdvisory  = "SC004"
	VersionUnknown = "SC005"
	LockNotRead    = "SC006"
)

// Finding is one supply-chain problem.
type Finding struct {
	ID       string        `json:"id"`
	Severity conf.Severity `json:"severity"`
	// File and Line locate it (the manifest, or the lock file).
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Package string `json:"package,omitempty"`
	Message string `json:"message"`
	Fix     string `json:"fix"`
}

// SDK is one vendor SDK dependency and its advisories.
type SDK struct {
	Dependency
	Advisories []Match `json:"advisories,omitempty"`
}

// Report is the result of a scan.
type Report struct {
	Manifests []string  `json:"manifests"`
	SDKs      []SDK     `json:"sdks"`
	Findings  []Finding `json:"findings"`
	// OSVRecords is how many advisories were loaded; -1 without --osv.
	OSVRecords int `json:"osv_records"`
}

// Counts returns how many findings have each severity.
func (r Report) Counts() (errs, warnings, infos int) {
	for _, f := range r.Findings {
		switch f.Severity {
		case conf.Error:
			errs++
		case conf.Warning:
			warnings++
		default:
			infos++
		}
	}
	return errs, warnings, infos
}

// Scan finds the manifests under paths (directories are searched; files
// are read as manifests), picks the vendor SDKs among their dependencies
// with m, and checks them; osv may be nil.
func Scan(paths []string, m Matcher, osv *OSV) (Report, error) {
	r := Report{OSVRecords: -1, Manifests: []string{}, SDKs: []SDK{}, Findings: []Finding{}}
	if osv != nil {
		r.OSVRecords = osv.Records
	}
	var manifests []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return Report{}, err
		}
		if !fi.IsDir() {
			manifests = append(manifests, p)
			continue
		}
		err = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if skipDirs[d.Name()] && q != p {
					return filepath.SkipDir
				}
				return nil
			}
			if isManifest(d.Name()) {
				manifests = append(manifests, q)
			}
			return nil
		})
		if err != nil {
			return Report{}, err
		}
	}
	slices.Sort(manifests)
	manifests = slices.Compact(manifests)
	for _, mf := range manifests {
		deps, lock, lockErr, err := readManifest(mf)
		if err != nil {
			return Report{}, err
		}
		r.Manifests = append(r.Manifests, mf)
		sdks := slices.DeleteFunc(deps, func(d Dependency) bool { return !m.IsSDK(d.Ecosystem, d.Name) })
		if len(sdks) == 0 {
			continue
		}
		if lock == "" && filepath.Base(mf) != "go.mod" && !strings.HasPrefix(filepath.Base(mf), "requirements") {
			r.add(NoLockFile, conf.Warning, mf, 0, "", "no lock file next to "+filepath.Base(mf)+": every install may resolve different SDK versions",
				lockAdvice(filepath.Base(mf)))
		}
		if lockErr != "" {
			r.add(LockNotRead, conf.Info, lock, 0, "", lockErr, "Use package-lock.json (npm) to have pins and integrity checked.")
		}
		for _, d := range sdks {
			r.check(d, osv)
		}
	}
	slices.SortStableFunc(r.Findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(b.Severity, a.Severity), cmp.Compare(a.File, b.File), cmp.Compare(a.Package, b.Package), cmp.Compare(a.ID, b.ID))
	})
	return r, nil
}

func (r *Report) add(id string, sev conf.Severity, file string, line int, pkg, msg, fix string) {
	r.Findings = append(r.Findings, Finding{ID: id, Severity: sev, File: file, Line: line, Package: pkg, Message: msg, Fix: fix})
}

func lockAdvice(manifest string) string {
	if manifest == "pyproject.toml" {
		return "Run poetry lock and commit poetry.lock."
	}
	return "Run npm install and commit package-lock.json; install with npm ci."
}

func (r *Report) check(d Dependency, osv *OSV) {
	s := SDK{Dependency: d}
	file := d.Manifest
	switch {
	case !d.Pinned:
		why := "is a range"
		switch {
		case strings.TrimSpace(d.Spec) == "", d.Spec == "*":
			why = "has no version"
		case d.Spec == "latest" || d.Spec == "next":
			why = "follows the " + d.Spec + " tag"
		case strings.HasPrefix(d.Spec, "=> "):
			why = "is replaced by a local directory"
		}
		r.add(Unpinned, conf.Warning, file, d.Line, d.Name, fmt.Sprintf("%s %q %s and nothing pins it", d.Name, d.Spec, why),
			pinAdvice(d))
	case !d.Integrity:
		where, line := d.Lock, 0
		if where == "" {
			where, line = d.Manifest, d.Line
		}
		r.add(NoIntegrity, conf.Warning, where, line, d.Name, fmt.Sprintf("%s %s is pinned but has no integrity hash", d.Name, d.Version),
			integrityAdvice(d))
	}
	if osv != nil {
		if d.Version == "" {
			r.add(VersionUnknown, conf.Info, file, d.Line, d.Name, fmt.Sprintf("%s: no exact version, so advisories cannot be checked", d.Name), pinAdvice(d))
		} else {
			s.Advisories = osv.Affecting(d.Ecosystem, d.Name, d.Version)
			for _, a := range s.Advisories {
				fix := "Upgrade to a fixed version"
				if len(a.Fixed) > 0 {
					fix += " (" + strings.Join(a.Fixed, ", ") + ")"
				}
				msg := fmt.Sprintf("%s %s is affected by %s", d.Name, d.Version, a.ID)
				if a.Summary != "" {
					msg += ": " + a.Summary
				}
				r.add(KnownAdvisory, conf.Error, file, d.Line, d.Name, msg, fix+".")
			}
		}
	}
	r.SDKs = append(r.SDKs, s)
}

func pinAdvice(d Dependency) string {
	switch d.Ecosystem {
	case NPM:
		return "Commit package-lock.json (npm install), or pin an exact version in package.json."
	case PyPI:
		return "Pin it: " + normalize(PyPI, d.Name) + "==X.Y.Z, or lock it with poetry lock / pip-compile --generate-hashes."
	}
	return "Require a released version and drop the local replace before shipping."
}

func integrityAdvice(d Dependency) string {
	switch d.Ecosystem {
	case Go:
		return "Run go mod tidy and commit go.sum."
	case NPM:
		return "Regenerate package-lock.json with a current npm so each package has an integrity field."
	}
	if filepath.Base(d.Lock) == "poetry.lock" {
		return "Regenerate poetry.lock with a current Poetry (poetry lock) so each package lists its file hashes."
	}
	return "Add --hash=sha256:… for each requirement (pip-compile --generate-hashes) and install with --require-hashes."
}

func isManifest(name string) bool {
	return name == "go.mod" || name == "package.json" || name == "pyproject.toml" ||
		strings.HasPrefix(name, "requirements") && strings.HasSuffix(name, ".txt")
}

func readFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxManifest))
}

// readManifest parses a manifest and applies its lock file. lockNote
// says why a lock file that exists was not read.
func readManifest(mf string) (deps []Dependency, lock, lockNote string, err error) {
	data, err := readFile(mf)
	if err != nil {
		return nil, "", "", err
	}
	dir := filepath.Dir(mf)
	exists := func(n string) string {
		p := filepath.Join(dir, n)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		return ""
	}
	switch base := filepath.Base(mf); {
	case base == "go.mod":
		if deps, err = ParseGoMod(mf, data); err != nil {
			return nil, "", "", err
		}
		sums := map[string]bool{}
		if lock = exists("go.sum"); lock != "" {
			b, err := readFile(lock)
			if err != nil {
				return nil, "", "", err
			}
			if sums, err = ParseGoSum(b); err != nil {
				return nil, "", "", fmt.Errorf("%s: %w", lock, err)
			}
		}
		for i := range deps {
			deps[i].Lock = lock
			deps[i].Integrity = sums[deps[i].Name+"@"+deps[i].Version]
		}
	case base == "package.json":
		if deps, err = ParsePackageJSON(mf, data); err != nil {
			return nil, "", "", err
		}
		lock = cmp.Or(exists("package-lock.json"), exists("npm-shrinkwrap.json"))
		if lock == "" {
			if other := cmp.Or(exists("yarn.lock"), exists("pnpm-lock.yaml")); other != "" {
				return deps, other, filepath.Base(other) + " is not read by this audit: pins and integrity hashes unverified", nil
			}
			return deps, "", "", nil
		}
		b, err := readFile(lock)
		if err != nil {
			return nil, "", "", err
		}
		entries, err := ParsePackageLock(b)
		if err != nil {
			return nil, "", "", fmt.Errorf("%s: %w", lock, err)
		}
		applyLock(deps, lock, entries, func(n string) string { return n })
	case base == "pyproject.toml":
		if deps, err = ParsePyProject(mf, data); err != nil {
			return nil, "", "", err
		}
		if lock = exists("poetry.lock"); lock != "" {
			b, err := readFile(lock)
			if err != nil {
				return nil, "", "", err
			}
			entries, err := ParsePoetryLock(b)
			if err != nil {
				return nil, "", "", fmt.Errorf("%s: %w", lock, err)
			}
			applyLock(deps, lock, entries, func(n string) string { return normalize(PyPI, n) })
		}
	default:
		deps, err = ParseRequirements(mf, data)
	}
	if err != nil && !errors.Is(err, ErrParse) {
		err = fmt.Errorf("%w: %s: %w", ErrParse, mf, err)
	}
	return deps, lock, "", err
}

func applyLock(deps []Dependency, lock string, entries map[string]LockEntry, key func(string) string) {
	for i := range deps {
		deps[i].Lock = lock
		if e, ok := entries[key(deps[i].Name)]; ok && e.Version != "" {
			deps[i].Version, deps[i].Pinned, deps[i].Integrity = e.Version, true, e.Integrity
		}
	}
}
