// Package router is sigil-hub's pure routing table: it turns each upstream's
// current surface (tool, prompt and resource names, in the order the upstream
// listed them) plus the naming rules into an immutable *Table that maps every
// exposed name to exactly one (upstream, original name) route.
//
// It owns: the prefix/separator naming rule and its deterministic renaming of
// names that do not fit ^[A-Za-z0-9_-]{1,64}$, the per-upstream allow/deny
// tool filters, the collision policy (a colliding name is withheld, never
// silently routed to one side), and deterministic resource-template matching.
//
// It is pure: no goroutines, no I/O, no logging, no clocks. Rebuilding after a
// list_changed produces a new Table that the hub swaps in atomically; a Table
// is never mutated after Build returns, so it is safe for concurrent use.
//
// It must not import anything but the standard library; in particular not
// mcp-go, hub, upstreams or authz: it is pure, with no goroutines and no I/O.
package router
