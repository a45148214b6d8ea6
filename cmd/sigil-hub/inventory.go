package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/config"
	"github.com/sigilcore/sigil-hub/hub"
	"github.com/sigilcore/sigil-hub/router"
	"github.com/sigilcore/sigil-hub/upstreams"
)

// The inventory behind `sigil-hub check` and `sigil-hub tools`: the state
// of every upstream after its first start attempt, the exposed tools with
// the intent action each one produces, and the warnings a person should
// see before pointing a client at the hub. Built from hub.Status, which
// only these two commands use.

// inventory is a point-in-time report of a started hub (takeInventory).
// It is a plain value: nothing in it is shared with the hub.
type inventory struct {
	// Upstreams are the enabled servers, in config order.
	Upstreams []upstreamInfo
	// Tools are the exposed tools in tools/list order.
	Tools []toolInfo
	// Warnings are problems worth a person's attention that do not stop the
	// hub: router renames and collisions, serverIds the ## mcp policy
	// grammar cannot express, tool counts over client limits, long names,
	// extractors for tools no upstream lists. Nil when there are none.
	Warnings []warning
}

// upstreamInfo is one upstream in an inventory. A plain value.
type upstreamInfo struct {
	// Name is the config name (the namespace) and ServerID its serverId
	// (docs/protocol.md#deriving-the-serverid).
	Name, ServerID string
	// Target is what the hub starts or connects to: the command line of a
	// stdio upstream, or a remote upstream's URL without userinfo or query.
	Target string
	// State is the connection state when the report was taken:
	// "starting", "ready", "backoff" or "stopped" (upstreams.State).
	State string
	// Ready is State == "ready": the upstream serves.
	Ready bool
	// Settled is true when the first start attempt finished (Ready or
	// failed) before the startup timeout; false means still starting.
	Settled bool
	// StartTime is how long the first start attempt took, measured from
	// Hub.Run's start to when Hub.Status saw it finish. Zero if !Settled.
	StartTime time.Duration
	// Err is the last failure (for a stdio upstream that failed to start it
	// includes the exit status and the stderr tail); "" when Ready.
	Err string
	// Tools, Prompts, Resources and Templates count what the upstream
	// listed (before the router's filters).
	Tools, Prompts, Resources, Templates int
	// Exposed counts this upstream's tools in inventory.Tools.
	Exposed int
	// ServerInfo is the upstream's serverInfo "name version", "" if unknown.
	ServerInfo string
	// ProtocolVersion is the negotiated MCP protocol version, "" if unknown.
	ProtocolVersion string
}

// toolInfo is one exposed tool. A plain value.
type toolInfo struct {
	// Exposed is the name clients see and call.
	Exposed string
	// Upstream, ServerID and Name are the route: the upstream's config name,
	// its serverId and the upstream's own tool name.
	Upstream, ServerID, Name string
	// Action is the intent action a call produces, exactly as the hub builds
	// it (authz.NewIntent, extractor included). Empty only if ActionNote
	// says why the action cannot be known before a call.
	Action string
	// ActionNote qualifies Action: how an extracted method can change it,
	// or why every call of this tool is denied locally. "" when none.
	ActionNote string
	// Extract is the tool's extractor fields (intent field → argument path,
	// docs/protocol.md#extractors); nil when the tool has no extractor.
	Extract map[string]string
}

// warning kinds (warning.Kind).
const (
	// warnServerID: a serverId the ## mcp policy grammar cannot express.
	warnServerID = "server_id"
	// warnToolCount: more exposed tools than a common client shows.
	warnToolCount = "tool_count"
	// warnNameLength: an exposed name at or near the 64-character limit.
	warnNameLength = "name_length"
	// warnRenamed: the router rewrote a name (router.Renamed).
	warnRenamed = "renamed"
	// warnCollision: a name was withheld because two routes wanted it.
	warnCollision = "collision"
	// warnInvalidName: the router could not use a listed name as given.
	warnInvalidName = "invalid_name"
	// warnExtractor: an extractor names a tool its upstream does not list,
	// or can never apply.
	warnExtractor = "extractor"
)

// warning is one warning in an inventory. A plain value.
type warning struct {
	// Kind is one of the Warn* constants.
	Kind string
	// Upstream is the upstream concerned, "" when the warning is global.
	Upstream string
	// Subject is the serverId, exposed name or tool concerned, "" if none.
	Subject string
	// Message says what is wrong and what it means, in plain words.
	Message string
}

// clientToolLimits are the tool limits of common clients that the
// inventory warns about, lowest first.
var clientToolLimits = []struct {
	client string
	limit  int
}{
	{"Cursor (older versions)", 40},
	{"Windsurf", 50},
	{"Cursor", 80},
	{"GitHub Copilot", 128},
}

// nameWarnLength is the exposed-name length from which inventory warns:
// close to router.MaxNameLen, the 64-character limit several clients and
// model APIs enforce on tool names.
const nameWarnLength = 60

// inventoryOf reports on a started hub's Status: every upstream, the
// exposed tools with their intent actions, and the warnings.
func inventoryOf(st hub.Status) inventory {
	var inv inventory
	servers := make(map[string]hub.UpstreamStatus, len(st.Upstreams))
	for _, u := range st.Upstreams {
		servers[u.Server.Name] = u
		snap := u.Snapshot
		info := upstreamInfo{
			Name: u.Server.Name, ServerID: u.Server.ServerID, Target: inventoryTarget(u.Server),
			State: snap.State.String(), Ready: snap.State == upstreams.Ready, Settled: u.Settled, StartTime: u.StartTime,
			Tools: len(snap.Tools), Prompts: len(snap.Prompts), Resources: len(snap.Resources), Templates: len(snap.Templates),
			ServerInfo: inventoryServerInfo(snap.ServerInfo), ProtocolVersion: snap.ProtocolVersion,
		}
		if snap.Err != nil && snap.State != upstreams.Ready {
			info.Err = snap.Err.Error()
		}
		inv.Upstreams = append(inv.Upstreams, info)
	}

	exposed := map[string]int{}
	for _, e := range st.Table.Tools() {
		u, ok := servers[e.Route.Upstream]
		if !ok || !inventoryHas(u.Snapshot.Tools, e.Route.Name) {
			continue
		}
		s := u.Server
		t := toolInfo{Exposed: e.Exposed, Upstream: s.Name, ServerID: s.ServerID, Name: e.Route.Name}
		var x *authz.Extractor
		if ex, ok := s.Extractors[e.Route.Name]; ok {
			x = &authz.Extractor{Action: ex.Action, Fields: ex.Fields} // as hub.New builds it
			t.Extract = maps.Clone(ex.Fields)
		}
		t.Action, t.ActionNote = intentAction(s.ServerID, e.Route.Name, x)
		inv.Tools = append(inv.Tools, t)
		exposed[s.Name]++
	}
	for i := range inv.Upstreams {
		inv.Upstreams[i].Exposed = exposed[inv.Upstreams[i].Name]
	}
	inv.Warnings = inventoryWarnings(st, inv)
	return inv
}

// inventoryWarnings collects inventory.Warnings.
func inventoryWarnings(st hub.Status, inv inventory) []warning {
	var ws []warning
	for _, u := range st.Upstreams {
		for _, msg := range config.ServerIDProblems(u.Server.ServerID) {
			ws = append(ws, warning{Kind: warnServerID, Upstream: u.Server.Name, Subject: u.Server.ServerID, Message: msg})
		}
	}
	for _, p := range st.Problems {
		w := warning{Subject: p.Exposed, Message: p.Message}
		if len(p.Routes) == 1 {
			w.Upstream = p.Routes[0].Upstream
		}
		switch p.Kind {
		case router.Renamed:
			w.Kind = warnRenamed
		case router.Collision:
			w.Kind = warnCollision
		case router.InvalidName:
			w.Kind = warnInvalidName
		default:
			continue // filtered by config: intended
		}
		ws = append(ws, w)
	}
	for _, t := range inv.Tools {
		switch n := len(t.Exposed); {
		case n > router.MaxNameLen:
			ws = append(ws, warning{Kind: warnNameLength, Upstream: t.Upstream, Subject: t.Exposed,
				Message: fmt.Sprintf("the name is %d characters, over the %d-character limit many clients and model APIs enforce: the tool may be refused or hidden", n, router.MaxNameLen)})
		case n >= nameWarnLength:
			ws = append(ws, warning{Kind: warnNameLength, Upstream: t.Upstream, Subject: t.Exposed,
				Message: fmt.Sprintf("the name is %d characters, close to the %d-character limit: a client that adds its own prefix may cut or refuse it", n, router.MaxNameLen)})
		}
	}
	var over []string
	for _, l := range clientToolLimits {
		if len(inv.Tools) > l.limit {
			over = append(over, fmt.Sprintf("%s %d", l.client, l.limit))
		}
	}
	if len(over) > 0 {
		ws = append(ws, warning{Kind: warnToolCount, Subject: fmt.Sprint(len(inv.Tools)),
			Message: fmt.Sprintf("%d tools are exposed, more than some clients use (%s): narrow them with tools = { allow = [...] } or --only", len(inv.Tools), strings.Join(over, ", "))})
	}
	for _, u := range st.Upstreams {
		snap := u.Snapshot
		if snap.State != upstreams.Ready && len(snap.Tools) == 0 {
			continue // nothing listed: cannot tell
		}
		for _, tool := range slices.Sorted(maps.Keys(u.Server.Extractors)) {
			if !inventoryHas(snap.Tools, tool) {
				ws = append(ws, warning{Kind: warnExtractor, Upstream: u.Server.Name, Subject: tool,
					Message: fmt.Sprintf("an extractor is configured for tool %q but the upstream lists no such tool (tool names are the upstream's own, not the exposed ones)", tool)})
			}
		}
	}
	return ws
}

// intentAction returns the intent action a call of the upstream's tool
// produces (docs/protocol.md#the-intent-for-a-tool-call, #extractors),
// computed with authz.NewIntent exactly as the hub does:
// "mcp.<serverID>.<tool>", or the typed action an extractor implies or names.
// Because an extracted method only yields "http" when the call's method
// argument is a valid uppercase HTTP method, note then says the action falls
// back to web_fetch otherwise; when no call can ever be authorized (an
// invalid extractor, empty or non-UTF-8 names) action is "" and note says
// why. Pure; safe for concurrent use.
func intentAction(serverID, tool string, x *authz.Extractor) (action, note string) {
	args := []byte("{}")
	if x != nil && len(x.Fields) > 0 {
		sample := map[string]any{}
		for _, field := range slices.Sorted(maps.Keys(x.Fields)) {
			v := "x"
			if field == "method" {
				v = "POST"
			}
			if !inventorySet(sample, strings.Split(x.Fields[field], "."), v) {
				return "", fmt.Sprintf("every call is denied: the extractor's argument paths overlap (%s = %q)", field, x.Fields[field])
			}
		}
		var err error
		if args, err = json.Marshal(sample); err != nil {
			return "", fmt.Sprintf("every call is denied: %v", err)
		}
	}
	in, err := authz.NewIntent(authz.Request{ServerID: serverID, Tool: tool, Arguments: args, TaskID: "sigil-hub-check", Extract: x})
	if err != nil {
		return "", "every call is denied: " + err.Error()
	}
	if x != nil && x.Action == "" && x.Fields["url"] != "" && x.Fields["method"] != "" {
		note = fmt.Sprintf("web_fetch when argument %q is not GET, HEAD, OPTIONS, POST, PUT, PATCH or DELETE", x.Fields["method"])
	}
	return in.Action, note
}

// inventoryHas reports whether items lists name.
func inventoryHas(items []upstreams.Item, name string) bool {
	return slices.ContainsFunc(items, func(it upstreams.Item) bool { return it.Name == name })
}

// inventorySet sets m[path...] = v, creating objects on the way; false if
// the path runs into a value another path set.
func inventorySet(m map[string]any, path []string, v string) bool {
	for i, k := range path {
		if i == len(path)-1 {
			if _, taken := m[k]; taken {
				return false
			}
			m[k] = v
			return true
		}
		next, ok := m[k]
		if !ok {
			child := map[string]any{}
			m[k] = child
			m = child
			continue
		}
		child, ok := next.(map[string]any)
		if !ok {
			return false
		}
		m = child
	}
	return false
}

// inventoryTarget describes what the hub starts or connects to, without
// secrets: a remote URL loses its userinfo and query.
func inventoryTarget(s config.Server) string {
	if s.URL != "" {
		return redactURL(s.URL)
	}
	return strings.Join(append([]string{s.Command}, s.Args...), " ")
}

// redactURL returns raw with any userinfo replaced by "***" and the query
// and fragment removed (a "?***" marks a removed query), for display. A URL
// that does not parse is shown as "***". Pure.
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "***"
	}
	rest, _, _ = strings.Cut(rest, "#")
	rest, q, hasQuery := strings.Cut(rest, "?")
	host, path, hasPath := strings.Cut(rest, "/")
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		host = "***@" + host[at+1:]
	}
	out := scheme + "://" + host
	if hasPath {
		out += "/" + path
	}
	if hasQuery && q != "" {
		out += "?***"
	}
	return out
}

// inventoryServerInfo formats a raw serverInfo as "name version".
func inventoryServerInfo(raw json.RawMessage) string {
	var si struct{ Name, Version string }
	if len(raw) == 0 || json.Unmarshal(raw, &si) != nil {
		return ""
	}
	return strings.TrimSpace(si.Name + " " + si.Version)
}
