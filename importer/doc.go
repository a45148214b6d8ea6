// Package importer turns the MCP server entries a person already has in
// their AI clients' configuration files (Claude Desktop, Cursor, Kimi,
// VS Code, Codex, and entries wrapped by @sigilcore/mcp-proxy or
// sigil-hub itself) into a sigil-hub TOML file, and rewrites those client
// files to hold the one hub entry instead (`sigil-hub import`, README
// "Adopt in two minutes").
//
// It owns: where each client keeps its file on each OS (Locate), reading
// and unwrapping entries (Read), naming, merging and secret handling
// (Build: no env or header value is ever copied into the TOML unless it is
// obviously not a secret; see safeLiteral), the rendering of the TOML and
// of the replacement client entry, and the in-place rewrite of a client
// file (RewriteJSON, RewriteCodex, Apply).
//
// Everything except Apply is pure: bytes and values in, bytes and values
// out. importer imports only the standard library, BurntSushi/toml (to
// read Codex's config.toml) and the leaf helpers internal/headername and
// internal/secretlike; it must not import hub/ or any other sigil-hub
// package — cmd/sigil-hub passes hub's serverId derivation in through
// BuildOptions and checks the result with config.Parse.
package importer
