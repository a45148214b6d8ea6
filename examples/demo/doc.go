// Command demo runs sigil-hub's main job offline, with no account and no
// network: it starts the hub in front of two example upstreams (a note store
// and a clock), decides every tool call with the embedded policy engine and
// examples/demo/warranty.md, and prints what an MCP client sees.
//
// Run it from anywhere inside the repository:
//
//	go run ./examples/demo                      # the whole demo
//	go run ./examples/demo -pending-timeout 1s  # shorter wait for the held call
//	go run ./examples/demo -v                   # also show the hub's own logs
//
// It builds ./cmd/sigil-hub and the upstreams named in
// examples/demo/sigil-hub.toml once, into a temporary folder, then starts
// the hub exactly as an MCP client (Claude Desktop, Cursor, ...) would: as a
// child process speaking newline-delimited JSON-RPC on stdin/stdout. The
// transcript goes to stdout; the hub's logs go to stderr only with -v. The
// exit status is 0 when every step behaved as expected, 1 otherwise.
//
// The program is a client of the hub binary: it imports mcp-go (client
// side) and BurntSushi/toml, never the hub's own packages, so that it
// exercises only what a real user gets. (Its tests do import authz/policy,
// to check warranty.md rule by rule.)
package main
