// Package bench owns Portcullis's performance measurements: the in-process
// request-path benchmark (requestpath_test.go, `go test -bench`) and, in its
// sub-directories, the tools that bench/run.sh starts to compare the gateway
// with a bare Go reverse proxy and nginx over loopback: a fast upstream, the
// bare proxy and a load generator. See bench/README.md.
package bench
