// Package upstreams owns every connection to an upstream MCP server: spawning
// stdio children (explicit environment, own process group, staged shutdown),
// connecting to remote Streamable HTTP / legacy SSE servers, the protocol
// era (era.go: a server/discover probe; a server that speaks 2026-07-28 gets
// per-request _meta, modern.go, and the others the initialize handshake,
// pinned to protocol version 2025-11-25), paginated listing of
// tools, prompts, resources and resource templates, list_changed re-listing,
// ping of remote servers, restart with backoff, and OAuth authorization of
// remote servers (oauth.go: discovery, dynamic registration, PKCE browser
// flow on a loopback callback, token file, refresh).
//
// It forwards raw JSON-RPC: listed items and call results are kept as the
// exact bytes the upstream sent, and call params are sent as the exact bytes
// the caller gave (compacted only when they contain newlines, which stdio's
// line framing cannot carry). It never decodes schemas or results into mcp-go
// types, which would be lossy. A session talks to its server through a conn
// (conn.go: call, notify, close, raw JSON in and out). A stdio upstream's
// conn is native (stdio_conn.go over internal/framing): no mcp-go code runs
// on it, and notifications and server requests reach the hub byte for
// byte. A remote upstream's conn (remote.go) is the one adapter to mcp-go's
// client transports (github.com/mark3labs/mcp-go/client/transport), their
// HTTP client (http.go) and the classification of their errors. A remote
// upstream is one origin: no HTTP redirect is followed, and nothing (no
// configured header, no token) goes to another origin (origin.go).
//
// It knows nothing about namespacing, policy or the front-side client. It must
// not import hub, router, authz or any front-side (mcp-go server) code.
package upstreams
