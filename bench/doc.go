// Package bench measures what sigil-hub costs on top of a direct connection
// to an upstream MCP server: per-call latency and its added p50/p99,
// throughput at several concurrencies, authorization cost (allocations and new
// connections to Sigil Sign per call), start-up with many upstreams, merged
// tools/list of 5,000 tools, and the resident memory of the real binary.
//
// Everything lives in _test.go files: run it with
//
//	go test -run '^$' -bench . ./bench/
//
// or scripts/bench.sh (make bench), which also prints a summary table (with
// COUNT=N it runs the latency and throughput groups N times and shows
// medians: on a shared 2-core machine one throughput ratio moves by ±30%).
// Every benchmark measures the direct connection in the same run and reports
// the hub's figures next to it with b.ReportMetric; none passes or fails on
// wall time. Without -bench, `go test ./bench/` runs one quick test that
// drives each harness once so that it cannot rot.
//
// The fake upstream is internal/testupstream, re-executed from the test
// binary (TestMain), over stdio or, for the http-* latency cases, serving
// Streamable HTTP on loopback (the hub then serves its HTTP front too, and a
// do-nothing reverse proxy gives the floor of one more HTTP hop). The floor
// of one more stdio process is the do-nothing relay, also the test binary
// re-executed (relayMain: two io.Copy between its stdio and its child's, no
// parsing); the relay cases measure it exactly as the policy-binary cases
// measure the binary, and scripts/bench.sh prints the targets of README
// "Performance" against both floors. The hub runs in process (hub.New, Run, front.ServeStdio
// over OS pipes) so that -cpuprofile and -memprofile see it; the policy-binary
// cases and the memory benchmark drive the real binary, and
// policy-binary-node puts it in front of the reference server
// @modelcontextprotocol/server-everything under Node (from testdata/npm).
//
// This package imports config, front, hub, internal/procstat and
// internal/testupstream;
// nothing may import it.
package bench
