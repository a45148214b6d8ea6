// Package hub is sigil-hub's composition root: it turns a config.Config
// into one MCP server in front of many upstream servers and owns the request
// pipeline.
//
// Every tools/call goes through the same fixed stages (pipeline.go):
//
//  1. resolve the exposed name with the router table (never by splitting on
//     the separator);
//  2. authorize the exact argument bytes with authz (Sigil Sign or the
//     embedded policy engine), with the upstream's own serverId;
//  3. forward those same bytes with upstreams;
//  4. map the outcome for the client (errors.go, the one place that decides
//     what a client sees).
//
// Nothing reaches an upstream before stage 2 approves.
//
// The client side (framing, the JSON-RPC envelope, the stdio and
// Streamable HTTP sessions, the listener) is package front's: the hub is
// its front.Handler (session.go: Register, Handle, Notify, Rejected), handed
// one validated front.Request per request and answering through a
// front.Session. The hub frames responses itself instead of using mcp-go's
// server: a proxy must answer with -32001/-32002 and forward results byte
// for byte, which mcp-go's tool handlers cannot do: any error a handler
// returns reaches the client as -32603 without data. The codes are
// docs/protocol.md#json-rpc-errors.
//
// A request of MCP 2026-07-28 (no session; its own client context, read
// by front) goes through the same pipeline; modern.go adds what that
// revision asks around it (server/discover, resultType, cache hints, its
// error codes), listen.go serves subscriptions/listen, mrtr.go carries
// multi round-trip requests across the hub in both eras (the upstream's
// requestState sealed in the hub's own, every retried call authorized
// again) and tasks.go routes the tasks extension's handles to the upstream
// and caller that created them (docs/protocol.md#mcp-revisions).
//
// Around the pipeline it owns hot reload of the upstream set (reload.go: the
// fleet is swapped whole, only changed servers restart), the routing view
// (view.go), what it keeps per client session (session.go), server→client
// request relay (requests.go), the audit record of every call (audit.go),
// the hooks of tool pinning into listing and calls (pins.go, view.go), the
// Status that `check` and `tools` report on (status.go; their inventory is
// cmd/sigil-hub's) and the approval surface of the embedded engine
// (approvals.go).
//
// The config file (parsing, overlay, serverId derivation, the starter
// file) is package config's; the pin file and its store are package pins'.
//
// hub imports the leaves (config, pins, router, upstreams, authz, audit,
// and front for the request it is handed and the session it answers);
// it must not import cmd/, tint or oklog/run, and it never reads the process
// environment: values come through Options and config.Parse's getenv.
package hub
