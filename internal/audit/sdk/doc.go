// Package sdk owns `portcullis audit sdks`: it reads the dependency
// manifests and lock files of the services that call vendors (go.mod and
// go.sum; package.json with package-lock.json or npm-shrinkwrap.json;
// requirements*.txt; pyproject.toml with poetry.lock), finds the vendor
// SDKs among their dependencies, and reports those that are unpinned
// (version ranges, latest, no lock file, no integrity hashes) and, given a
// local OSV export (a directory of OSV JSON records; no network), those
// with known advisories.
package sdk
