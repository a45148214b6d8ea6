package hub

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
	"github.com/sigilcore/sigil-hub/router"
	"github.com/sigilcore/sigil-hub/upstreams"
)

// rebuild builds a new routing view from every upstream's current snapshot
// and swaps it in. An upstream that is restarting keeps its last listed
// surface (its calls fail as unavailable) so that a crash does not make
// clients re-list twice.
func (h *Hub) rebuild() *view {
	h.rebuildMu.Lock()
	defer h.rebuildMu.Unlock()
	f := h.fleet.Load()
	snaps := make(map[string]*upstreams.Snapshot, len(f.ups))
	gens := make(map[string]uint64, len(f.ups))
	for _, u := range f.ups {
		snap := u.conn.Snapshot()
		snaps[u.name] = snap
		gens[u.name] = snap.Generation
	}
	table, problems := h.route(f, snaps)
	for _, p := range problems {
		// Each line names the servers concerned (server_name, as every line
		// about a server does).
		var servers []string
		for _, r := range p.Routes {
			if u := f.byName[r.Upstream]; u != nil && !slices.Contains(servers, u.serverName) {
				servers = append(servers, u.serverName)
			}
		}
		attrs := []any{"exposed_tool", p.Exposed, "server_name", strings.Join(servers, ","), "detail", p.Message}
		switch p.Kind {
		case router.Filtered:
			h.log.Debug("tool filtered by config", attrs...)
		case router.Collision:
			h.log.Warn("name collision: name withheld", attrs...)
		default:
			h.log.Info("tool renamed", attrs...)
		}
	}
	tools := table.Tools()
	v := &view{fleet: f, table: table, generations: gens, toolDefs: make(map[string]json.RawMessage, len(tools))}
	for _, e := range tools {
		u := f.byName[e.Route.Upstream]
		if raw, ok := h.rendered(u, snaps[u.name], e, false); ok && !h.pinHidden(u, e) {
			v.tools = append(v.tools, raw)
			v.toolDefs[e.Exposed] = h.renders[e.Route.Upstream].tools[e.Route.Name]
		}
	}
	if h.pins != nil {
		h.pins.Flush()
	}
	for _, e := range table.Prompts() {
		u := f.byName[e.Route.Upstream]
		if raw, ok := h.rendered(u, snaps[u.name], e, true); ok {
			v.prompts = append(v.prompts, raw)
		}
	}
	// Resources keep their URIs: they are listed when the router gives the
	// URI (or template) to exactly one upstream.
	for _, u := range f.ups {
		for _, it := range snaps[u.name].Resources {
			if owner, ok := table.Resource(it.Name); ok && owner == u.name {
				v.resources = append(v.resources, it.Raw)
			}
		}
		for _, it := range snaps[u.name].Templates {
			v.templates = append(v.templates, it.Raw)
		}
	}
	h.view.Store(v)
	return v
}

// route builds the routing table of f's upstreams for snaps (by upstream
// name): the names each lists, and its configured tool filters.
func (h *Hub) route(f *fleet, snaps map[string]*upstreams.Snapshot) (*router.Table, []router.Problem) {
	srcs := make([]router.Source, 0, len(f.ups))
	for _, u := range f.ups {
		cfg, snap := f.server(u.name), snaps[u.name]
		srcs = append(srcs, router.Source{Upstream: u.name, Allow: cfg.Allow, Deny: cfg.Deny, Tools: itemNames(snap.Tools),
			Prompts: itemNames(snap.Prompts), Resources: itemNames(snap.Resources), Templates: itemNames(snap.Templates)})
	}
	return router.Build(router.Rules{Separator: f.cfg.Separator, Namespace: !h.opts.Single}, srcs)
}

func itemNames(items []upstreams.Item) []string {
	var names []string
	for _, it := range items {
		names = append(names, it.Name)
	}
	return names
}

// renderCache holds one upstream's list items as the client sees them, for
// one snapshot generation: a rebuild re-renders only upstreams that changed
// (a start-up of N upstreams is not N full re-renders).
type renderCache struct {
	conn            *upstreams.Upstream // a reconfigured upstream is a new connection
	gen             uint64
	tools, prompts  map[string]json.RawMessage // by upstream name → raw
	rTools, rPrompt map[string]json.RawMessage // by exposed name → renamed
}

// rendered returns e's item renamed for the client. Callers hold rebuildMu.
func (h *Hub) rendered(u *upstream, snap *upstreams.Snapshot, e router.Entry, prompt bool) (json.RawMessage, bool) {
	c := h.renders[e.Route.Upstream]
	if c == nil || c.conn != u.conn || c.gen != snap.Generation {
		c = &renderCache{conn: u.conn, gen: snap.Generation, tools: index(snap.Tools), prompts: index(snap.Prompts),
			rTools: map[string]json.RawMessage{}, rPrompt: map[string]json.RawMessage{}}
		h.renders[e.Route.Upstream] = c
	}
	src, done := c.tools, c.rTools
	if prompt {
		src, done = c.prompts, c.rPrompt
	}
	if raw, ok := done[e.Exposed]; ok {
		return raw, true
	}
	raw, ok := src[e.Route.Name]
	if !ok {
		return nil, false
	}
	raw = renamed(raw, e.Exposed, e.Route.Name)
	done[e.Exposed] = raw
	return raw, true
}

// pinHidden is the listing pin hook: it pins e's definition on first sight
// and reports whether strict pinning hides it. Callers hold rebuildMu (after
// rendered, so the render cache is current).
func (h *Hub) pinHidden(u *upstream, e router.Entry) bool {
	if h.pins == nil {
		return false
	}
	raw, ok := h.renders[e.Route.Upstream].tools[e.Route.Name]
	if !ok {
		return false
	}
	return h.pins.Blocked(h.pins.Check(u.serverID, e.Route.Name, raw))
}

func index(items []upstreams.Item) map[string]json.RawMessage {
	m := make(map[string]json.RawMessage, len(items))
	for _, it := range items {
		m[it.Name] = it.Raw
	}
	return m
}

// renamed returns raw (a JSON object, as the upstream listed it) with its
// top-level "name" member set to exposed, every other byte unchanged
// (schemas, _meta, icons and unknown fields reach the client as the
// upstream sent them).
func renamed(raw json.RawMessage, exposed, original string) json.RawMessage {
	if exposed == original {
		return raw
	}
	for key, v := range members(raw) {
		if k, _ := strictjson.DecodeString(key); k == "name" {
			out := make([]byte, 0, len(raw)+len(exposed)+2)
			out = strictjson.AppendString(append(out, raw[:v[0]]...), exposed)
			return append(out, raw[v[1]:]...)
		}
	}
	return raw
}

// page cuts a list into pages with an opaque cursor (MCP pagination).
func page(items []json.RawMessage, cursor string, size int) ([]json.RawMessage, string, error) {
	off := 0
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err == nil {
			_, err = fmt.Sscanf(string(b), "o%d", &off)
		}
		if err != nil || off < 0 || off > len(items) {
			return nil, "", fmt.Errorf("invalid cursor %q: list again from the start", cursor)
		}
	}
	end := min(off+size, len(items))
	next := ""
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "o%d", end))
	}
	return items[off:end], next, nil
}
