// Package audit owns sigil-hub's audit trail (README "Audit trail"): one
// JSON line per tools/call attempt, written before the response is sent to
// the client.
//
// A Record carries identifiers, the decision and its reason, latencies and
// the forward outcome. It never carries argument values: the caller hashes
// the canonical arguments and passes only the SHA-256 (Write rejects anything
// that is not a hex digest in that field).
//
// A Log serializes records through one writer goroutine, so lines never
// interleave and each record is one write call (one write syscall on an
// O_APPEND file). Write waits for the disk at most Options.WriteTimeout and
// reports every failure (full disk, stalled disk, closed log) as an error
// naming the file, which the hub turns into a fail-closed block: an
// unauditable call is not forwarded silently. Records are fsync'd every
// Options.SyncEvery and on Close.
//
// audit is a leaf: it imports only the standard library. It must not import
// hub, router, upstreams, authz, cmd or mcp-go, and it never writes to stdout
// unless handed os.Stdout by its caller (cmd must not do that: stdout is the
// MCP transport).
package audit
