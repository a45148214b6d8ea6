package hub

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/config"
	"github.com/sigilcore/sigil-hub/upstreams"
)

// Reload says what a Reconfigure changed, by server name in config order.
// A plain value.
type Reload struct {
	// Added servers were started; Removed ones (deleted or disabled) were
	// stopped; Restarted ones changed how they are started or reached
	// (command, args, env, cwd, url, transport, headers, oauth, server_id,
	// server_requests) and were stopped, then started again.
	Added, Removed, Restarted []string
	// Updated servers changed only what the hub applies itself (tool
	// filters, extractors, attach_attestation, server_name): their
	// connection was kept.
	Updated []string
	// Settings are the top-level settings that changed and now apply:
	// separator, call_timeout, startup_timeout, agent_id, task_id (new
	// sessions), log_level (the caller applies it), and policy when the
	// embedded engine's policy file (or its path) changed.
	Settings []string
	// PolicyHash is the new policy's hash when the policy changed, else "".
	PolicyHash string
}

// Empty reports whether nothing changed.
func (r Reload) Empty() bool {
	return len(r.Added)+len(r.Removed)+len(r.Restarted)+len(r.Updated)+len(r.Settings) == 0
}

// String is a one-line summary for a log.
func (r Reload) String() string {
	if r.Empty() {
		return "no change"
	}
	var parts []string
	for _, p := range []struct {
		what  string
		names []string
	}{{"added", r.Added}, {"removed", r.Removed}, {"restarted", r.Restarted}, {"updated", r.Updated}, {"settings", r.Settings}} {
		if len(p.names) > 0 {
			parts = append(parts, p.what+" "+strings.Join(p.names, ", "))
		}
	}
	return strings.Join(parts, "; ")
}

// Reconfigure applies cfg to the running hub (hot reload): servers that
// were added are started, servers removed or disabled are stopped, servers
// whose connection settings changed are stopped and started again, and
// every other upstream is left alone — its process, session and calls in
// flight untouched. It waits (up to startup_timeout, or until ctx ends)
// for the started servers' first start attempt, then swaps the routing
// view once, so each client gets at most one list_changed per list, and
// only then stops the removed servers. Calls in flight on a stopped server
// fail as unavailable; none is replayed.
//
// With the embedded policy engine the policy file is read again, and a
// changed policy decides the calls authorized from then on (calls already
// held keep waiting for their person); a policy that does not parse
// refuses the whole reload. The other settings that decide how calls are
// governed (sign_url, policy_hash, verify, pending_timeout, audit, pin,
// pin_file, and switching between Sigil Sign and a local policy) apply at
// start only: if cfg changes any of them, nothing is applied and the error
// names them. So does a cfg that disables every server. secrets replaces
// the values redacted from client-visible messages of the upstreams it
// starts. Reconfigure needs Run to be running; calls are serialized.
func (h *Hub) Reconfigure(ctx context.Context, cfg config.Config, secrets []string) (Reload, error) {
	h.reconfMu.Lock()
	defer h.reconfMu.Unlock()
	if h.runCtx == nil {
		return Reload{}, errors.New("the hub is not running: nothing was reloaded")
	}
	old := h.fleet.Load()
	fixed, settings := settingsDiff(old.cfg, cfg)
	if len(fixed) > 0 {
		verb := "they apply"
		if len(fixed) == 1 {
			verb = "it applies"
		}
		return Reload{}, fmt.Errorf("%s changed: %s at start only, so nothing was reloaded; restart sigil-hub to apply the new config",
			strings.Join(fixed, ", "), verb)
	}
	if !slices.ContainsFunc(cfg.Servers, func(s config.Server) bool { return !s.Disabled }) {
		return Reload{}, errors.New("every server would be disabled: nothing was reloaded (the hub keeps serving the old config)")
	}
	var r Reload
	r.Settings = settings
	if local, _ := h.authorizer.(*authz.Local); local != nil {
		p, err := loadPolicy(cfg.Policy)
		if err != nil {
			return Reload{}, fmt.Errorf("%w: nothing was reloaded (the hub keeps the policy it has)", err)
		}
		if p.Hash() != local.PolicyHash() {
			r.PolicyHash = p.Hash()
			if !slices.Contains(r.Settings, "policy") {
				r.Settings = append(r.Settings, "policy")
			}
			local.SetPolicy(p)
			h.log.Info("policy reloaded", "policy", cfg.Policy, "policy_hash", p.Hash())
		}
	}
	h.secrets = secrets
	nf := &fleet{cfg: cfg, byName: map[string]*upstream{}}
	var starts, restarts []*upstreams.Upstream
	for _, s := range cfg.Servers {
		if s.Disabled {
			continue
		}
		ou := old.byName[s.Name]
		switch was := old.server(s.Name); {
		case ou == nil:
			u := h.newUpstream(cfg, s, nil)
			starts = append(starts, u.conn)
			r.Added = append(r.Added, s.Name)
			nf.add(u)
		case !sameConnection(was, s):
			u := h.newUpstream(cfg, s, nil)
			restarts = append(restarts, ou.conn)
			starts = append(starts, u.conn)
			r.Restarted = append(r.Restarted, s.Name)
			nf.add(u)
		case !reflect.DeepEqual(was, s):
			nf.add(h.newUpstream(cfg, s, ou.conn))
			r.Updated = append(r.Updated, s.Name)
		default:
			nf.add(ou)
		}
	}
	var removed []*upstreams.Upstream
	for _, ou := range old.ups {
		if nf.byName[ou.name] == nil {
			removed = append(removed, ou.conn)
			r.Removed = append(r.Removed, ou.name)
		}
	}
	if r.Empty() {
		h.fleet.Store(nf) // same servers; keeps the new secrets
		return r, nil
	}

	// Break before make: a restarted server's old process may hold what
	// the new one needs (a lock, a port).
	for _, c := range restarts {
		h.stop(c)
	}
	h.startOAuthCallback()
	for _, c := range starts {
		h.start(c)
	}
	wctx, cancel := context.WithTimeout(ctx, startupTimeout(cfg))
	defer cancel()
	stop := context.AfterFunc(h.runCtx, cancel)
	defer stop()
	for _, c := range starts {
		_ = c.WaitSettled(wctx) // a server still starting joins the list when ready
	}

	h.fleet.Store(nf)
	h.rebuildMu.Lock()
	for _, name := range r.Removed {
		delete(h.renders, name)
	}
	h.rebuildMu.Unlock()
	h.publish()
	for _, c := range removed {
		h.stop(c)
	}
	h.log.Info("config reloaded", "change", r.String())
	return r, nil
}

// settingsDiff names the top-level settings that differ between a and b:
// fixed ones apply at start only, changed ones a reload applies.
func settingsDiff(a, b config.Config) (fixed, changed []string) {
	for _, f := range []struct {
		key         string
		same, fixed bool
	}{
		{"sign_url", a.SignURL == b.SignURL, true},
		{"policy", a.Policy == b.Policy, (a.Policy == "") != (b.Policy == "")}, // Sign ↔ local is start-only
		{"policy_hash", a.PolicyHash == b.PolicyHash, true},
		{"verify", a.Verify == b.Verify, true},
		{"pending_timeout", a.PendingTimeout == b.PendingTimeout, true},
		{"audit", a.Audit == b.Audit, true},
		{"pin", a.Pin == b.Pin, true},
		{"pin_file", a.PinFile == b.PinFile, true},
		{"separator", a.Separator == b.Separator, false},
		{"call_timeout", a.CallTimeout == b.CallTimeout, false},
		{"startup_timeout", a.StartupTimeout == b.StartupTimeout, false},
		{"agent_id", a.AgentID == b.AgentID, false},
		{"task_id", a.TaskID == b.TaskID, false},
		{"log_level", a.LogLevel == b.LogLevel, false},
	} {
		switch {
		case f.same:
		case f.fixed:
			fixed = append(fixed, f.key)
		default:
			changed = append(changed, f.key)
		}
	}
	return fixed, changed
}

// sameConnection reports whether a and b start or reach their server the
// same way; if not, a reload restarts it.
func sameConnection(a, b config.Server) bool {
	return a.Command == b.Command && slices.Equal(a.Args, b.Args) && reflect.DeepEqual(a.Env, b.Env) &&
		a.Cwd == b.Cwd && a.URL == b.URL && a.Transport == b.Transport && reflect.DeepEqual(a.Headers, b.Headers) &&
		reflect.DeepEqual(a.OAuth, b.OAuth) && a.ServerID == b.ServerID && a.ServerRequests == b.ServerRequests
}
