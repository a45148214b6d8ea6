// Package pins owns tool pinning, the rug-pull defence (README "Tool
// pinning (rug-pull defence)"): the pin file and a running hub's view of
// it.
//
// The hub records a hash (ToolHash) of each tool's definition per serverId
// on first sight. When an upstream later lists a different definition
// under the same name, pin = "warn" serves it and logs a warning once per
// change, and pin = "strict" hides it (not listed; calls fail with -32602,
// reason tool_definition_changed) until a person runs `sigil-hub pins
// accept`. Either way the new hash is recorded as "pending" in the pin
// file, so accepting (Accept) needs no running upstream. A Store re-reads
// the pin file when it changes on disk, so an accept takes effect without
// a restart.
//
// It owns the pin file's format and its atomic writes (Load, Accept,
// Reset) and the Store a running hub checks every listed and called
// definition against. How a refusal reaches the client is the hub's
// (hub/pins.go). pins imports authz (the pg-commit-v1 canonical hash);
// it must not import hub, config, upstreams or cmd/.
package pins
