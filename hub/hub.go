package hub

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sigilcore/sigil-hub/audit"
	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/authz/policy"
	"github.com/sigilcore/sigil-hub/config"
	"github.com/sigilcore/sigil-hub/front"
	"github.com/sigilcore/sigil-hub/pins"
	"github.com/sigilcore/sigil-hub/router"
	"github.com/sigilcore/sigil-hub/upstreams"
)

// Options configure a Hub. New copies them.
type Options struct {
	// Config is the parsed hub configuration (config.Parse, or built by the
	// CLI for single-wrap mode). Servers must not be empty.
	Config config.Config
	// APIKey is the Sigil Sign API key. Required unless Config.Policy is set
	// (docs/protocol.md#no-key-no-start): without either, New fails and says
	// how to get one.
	APIKey string
	// Bypass forwards calls whose authorization failed in the unreachable
	// class only (docs/protocol.md#unreachable-and-fail-closed), each with an
	// error-level log line. CLI-only.
	Bypass bool
	// Single selects single-wrap mode: exposed names are the upstream's own.
	// If false, names are <server><separator><name>.
	Single bool
	// Environ is the hub's own environment ("K=V"); upstream children get
	// only its allow-listed part plus their declared env.
	Environ []string
	// Logger receives the hub's logs. Nil discards them.
	Logger *slog.Logger
	// Version is reported as serverInfo.version. "" → "dev".
	Version string
	// Secrets are values that must never reach a client in an error message
	// (an upstream's stderr tail may print its token). Nil means none.
	Secrets []string
	// OAuthDir is the folder of the OAuth token files (one per serverId,
	// mode 0600); "" keeps tokens in memory only, so a restart needs a new
	// authorization.
	OAuthDir string
	// OAuthCallback is the loopback address of the OAuth redirect listener,
	// which runs only when a server has oauth; "" means 127.0.0.1:0 (a free
	// port, logged).
	OAuthCallback string
	// OAuthStoredOnly uses stored OAuth tokens (refreshing them) but never
	// starts a browser authorization: a server without a usable token
	// fails with an error saying so (check and tools).
	OAuthStoredOnly bool
	// OpenBrowser, if set, is called with each OAuth authorization URL (the
	// URL is logged either way). Nil means log only.
	OpenBrowser func(url string) error
}

// Hub is one MCP server in front of many upstream servers, and the request
// pipeline between them (the package doc). Methods are safe for concurrent
// use.
type Hub struct {
	opts       Options
	log        *slog.Logger
	authorizer authz.Authorizer
	closeAuthz func()
	started    atomic.Int64 // UnixNano when Run started; 0 before
	settled    atomic.Bool  // every upstream finished its first start attempt
	pageSize   int          // list page size (test knob)

	fleet atomic.Pointer[fleet] // the configured upstreams, swapped whole by Reconfigure

	reconfMu sync.Mutex                   // serializes Run's start, Reconfigure and publish; guards below
	runCtx   context.Context              // Run's context; nil before Run and after it ends
	running  map[*upstreams.Upstream]*run // connections Run started, by connection
	runGroup errgroup.Group               // every goroutine Run or Reconfigure started
	oauthOn  bool                         // the OAuth callback listener runs
	secrets  []string                     // Options.Secrets, then Reconfigure's

	view atomic.Pointer[view] // the routing view, swapped whole on change

	rebuildMu sync.Mutex              // serializes rebuilds; guards renders
	renders   map[string]*renderCache // per upstream

	changed chan struct{} // cap 1: an upstream's surface changed

	sessions sync.Map // front.Session → *session: the live (initialized) client sessions

	sessionWakeMu sync.Mutex    // guards sessionWake
	sessionWake   chan struct{} // closed (and replaced) when a session becomes ready: requests.go waits on it

	progress sync.Map // hub progress token (string) → progressTarget

	modernTaskIDs sync.Map    // principal → task id of a modern (sessionless) client: modern.go
	listeners     listeners   // open subscriptions/listen requests: listen.go
	states        stateSeal   // the requestState the hub hands out: mrtr.go
	parkedCalls   parkedCalls // calls waiting for their client's input: mrtr.go
	// logTargets are the 2026-07-28 calls in flight (and, for
	// progressGrace after, as their messages may trail the result) that
	// asked for log messages. An upstream's log message goes to its one
	// such call; with several, it cannot be told whose it is and goes to
	// none (modern.go).
	logTargets callSet
	tasks      taskTable // tasks upstreams created, by the id the hub handed out: tasks.go

	pins *pins.Store // nil when pinning is off (pins.go: the hooks)

	oauthCB *upstreams.OAuthCallback // nil without oauth servers; set by newUpstream (New, or Reconfigure under reconfMu)

	audit       *audit.Log  // nil without an audit log
	auditBroken atomic.Bool // the last audit write failed: calls are blocked

	calls callSet // forwarded calls in flight
}

// callRef names one forwarded client call.
type callRef struct {
	sess *session
	rel  string // raw client request id
}

// fleet is the hub's set of upstreams and the config they came from. It is
// immutable: Reconfigure builds a new one and swaps it in whole.
type fleet struct {
	cfg    config.Config
	ups    []*upstream          // enabled servers, in config order
	byName map[string]*upstream // the same, by config name
}

// run is one started connection: cancel stops it, done closes when its
// Run returned (its child processes are gone).
type run struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// upstream is the hub's record of one configured server. Immutable: a
// reconfiguration that changes only its filters, extractors or attestation
// makes a new record sharing conn.
type upstream struct {
	name       string
	serverID   string
	serverName string // server_name, the display label in logs (default: the serverId)
	attest     bool
	extractors map[string]*authz.Extractor // by upstream tool name
	conn       *upstreams.Upstream
	secrets    []string // redacted from client-visible messages
}

// progressTarget is where an upstream's progress for a hub token goes.
type progressTarget struct {
	sess  *session
	token json.RawMessage // the client's own progressToken
	rel   json.RawMessage // the client request the progress belongs to
	// upstream is the configured name of the upstream the call went to,
	// the only one whose progress for the token is delivered.
	upstream string
}

// New builds a hub from opts. It starts nothing: call Run.
func New(opts Options) (*Hub, error) {
	if len(opts.Config.Servers) == 0 {
		return nil, errors.New("no upstream servers configured: add a [servers.NAME] table to the config file, or run `sigil-hub -- <command> [args...]` to wrap one server")
	}
	opts.Logger = cmp.Or(opts.Logger, slog.New(slog.DiscardHandler))
	opts.Version = cmp.Or(opts.Version, "dev")
	h := &Hub{
		opts:     opts,
		log:      opts.Logger,
		changed:  make(chan struct{}, 1),
		renders:  make(map[string]*renderCache),
		pageSize: 1000,
		running:  make(map[*upstreams.Upstream]*run),
		secrets:  opts.Secrets,
	}
	az, closeAz, err := newAuthorizer(opts)
	if err != nil {
		return nil, err
	}
	h.authorizer, h.closeAuthz = az, closeAz
	if h.pins, err = pins.NewStore(opts.Config.Pin, opts.Config.PinFile, opts.Logger.With("component", "pins")); err != nil {
		closeAz()
		return nil, err
	}
	if opts.Config.Audit != "" {
		if h.audit, err = audit.Open(opts.Config.Audit, audit.Options{Logger: opts.Logger.With("component", "audit")}); err != nil {
			closeAz()
			return nil, fmt.Errorf("audit log: %w", err)
		}
	}
	f := &fleet{cfg: opts.Config, byName: map[string]*upstream{}}
	for _, srv := range opts.Config.Servers {
		if !srv.Disabled {
			f.add(h.newUpstream(opts.Config, srv, nil))
		}
	}
	if len(f.ups) == 0 {
		closeAz()
		return nil, errors.New("every configured server is disabled: enable at least one")
	}
	h.fleet.Store(f)
	h.rebuild()
	return h, nil
}

// add appends u to the fleet being built.
func (f *fleet) add(u *upstream) {
	f.ups = append(f.ups, u)
	f.byName[u.name] = u
}

// server returns the config of the enabled server name.
func (f *fleet) server(name string) config.Server {
	for _, s := range f.cfg.Servers {
		if s.Name == name && !s.Disabled {
			return s
		}
	}
	return config.Server{}
}

// newUpstream makes the record of server s. With conn nil it makes a new,
// unstarted connection; otherwise the record shares conn (a change that
// needs no restart).
func (h *Hub) newUpstream(cfg config.Config, s config.Server, conn *upstreams.Upstream) *upstream {
	u := &upstream{name: s.Name, serverID: s.ServerID, serverName: cmp.Or(s.ServerName, s.ServerID), attest: s.Attestation, extractors: map[string]*authz.Extractor{}, secrets: h.secrets, conn: conn}
	for tool, ex := range s.Extractors {
		u.extractors[tool] = &authz.Extractor{Action: ex.Action, Fields: ex.Fields}
	}
	if conn != nil {
		return u
	}
	spec := upstreams.Spec{
		Name:          s.Name,
		Command:       s.Command,
		Args:          s.Args,
		Dir:           s.Cwd,
		Environ:       h.opts.Environ,
		Env:           envList(s.Env),
		URL:           s.URL,
		Transport:     s.Transport,
		Headers:       s.Headers,
		OAuth:         h.oauthSpec(s),
		ClientName:    "sigil-hub",
		ClientVersion: h.opts.Version,
		InitTimeout:   startupTimeout(cfg),
		Logger:        h.log.With("server_name", u.serverName), // every line about this server names it
		OnChange:      h.markChanged,
		OnNotification: func(method string, params json.RawMessage) {
			h.upstreamNotification(s.Name, method, params)
		},
	}
	if s.ServerRequests {
		spec.OnRequest = func(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
			return h.upstreamRequest(ctx, s.Name, method, params)
		}
		spec.Capabilities = upstreamCapabilities
	}
	u.conn = upstreams.New(spec)
	return u
}

// newAuthorizer picks the decision point (never an allow-all,
// docs/protocol.md#no-key-no-start): the embedded policy engine when a policy
// file is configured, else Sigil Sign.
func newAuthorizer(opts Options) (authz.Authorizer, func(), error) {
	if opts.Config.Policy != "" {
		p, err := loadPolicy(opts.Config.Policy)
		if err != nil {
			return nil, nil, err
		}
		opts.Logger.Info("using the embedded policy engine (offline)", "policy", opts.Config.Policy, "policy_hash", p.Hash())
		l := authz.NewLocal(authz.LocalOptions{Policy: p, PendingTimeout: opts.Config.PendingTimeout, Logger: opts.Logger.With("component", "authz")})
		return l, func() {}, nil
	}
	if opts.APIKey == "" {
		return nil, nil, errors.New("no Sigil API key: set SIGIL_API_KEY (or pass --key); get a key at https://sigilcore.com, " +
			"or decide calls offline with a local policy (policy = \"warranty.md\" in the config file). sigil-hub never runs ungoverned")
	}
	s := authz.NewSign(authz.SignOptions{
		URL:            opts.Config.SignURL,
		APIKey:         opts.APIKey,
		PendingTimeout: opts.Config.PendingTimeout,
		Verify:         opts.Config.Verify,
		PolicyHash:     opts.Config.PolicyHash,
		Logger:         opts.Logger.With("component", "authz"),
	})
	return s, s.Close, nil
}

// loadPolicy reads and parses a warranty.md policy file.
func loadPolicy(path string) (*policy.Policy, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	p, err := policy.Parse(src, policy.Options{})
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return p, nil
}

func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// Run supervises every upstream and keeps the routing view current until
// ctx ends; it returns after every upstream (and its child processes) is gone.
func (h *Hub) Run(ctx context.Context) error {
	h.started.Store(time.Now().UnixNano())
	defer h.closeAuthz()
	if h.audit != nil {
		defer func() {
			if err := h.audit.Close(); err != nil {
				h.log.Error("audit log: close", "err", err)
			}
		}()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h.reconfMu.Lock()
	if h.runCtx != nil {
		h.reconfMu.Unlock()
		return errors.New("hub: Run called twice")
	}
	h.runCtx = ctx
	h.startOAuthCallback()
	for _, u := range h.fleet.Load().ups {
		h.start(u.conn)
	}
	h.runGroup.Go(func() error { h.publisher(ctx); return nil })
	h.reconfMu.Unlock()

	<-ctx.Done()
	h.reconfMu.Lock()
	h.runCtx = nil // Reconfigure refuses from here on
	h.reconfMu.Unlock()
	// Upstream runs report failures through their state, and the OAuth
	// callback logs its own: none of them ends the hub.
	return h.runGroup.Wait()
}

// start runs conn until its own stop or Run's end. Callers hold reconfMu
// with Run running.
func (h *Hub) start(conn *upstreams.Upstream) {
	ctx, cancel := context.WithCancel(h.runCtx)
	r := &run{cancel: cancel, done: make(chan struct{})}
	h.running[conn] = r
	h.runGroup.Go(func() error {
		defer close(r.done)
		defer cancel()
		_ = conn.Run(ctx) // errors only if run twice; failures are its state
		return nil
	})
}

// stop stops conn and waits until its children are gone. Callers hold
// reconfMu.
func (h *Hub) stop(conn *upstreams.Upstream) {
	r := h.running[conn]
	if r == nil {
		return
	}
	delete(h.running, conn)
	r.cancel()
	<-r.done
}

// startOAuthCallback starts the OAuth redirect listener once some server
// needs it. Callers hold reconfMu with Run running.
func (h *Hub) startOAuthCallback() {
	if h.oauthCB == nil || h.oauthOn {
		return
	}
	h.oauthOn = true
	ctx := h.runCtx
	h.runGroup.Go(func() error {
		// A callback that cannot listen fails only the servers that need a
		// new authorization (their status says why).
		if err := h.oauthCB.Run(ctx); err != nil {
			h.log.Error("oauth callback", "err", err)
		}
		return nil
	})
}

// publisher turns surface changes into one rebuild and notification per
// burst until ctx ends.
func (h *Hub) publisher(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.changed:
		}
		// Coalesce a burst (several upstreams becoming ready at once, a
		// list_changed storm) into one rebuild and one notification.
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		// A reconfiguration publishes once when it is done; waiting for it
		// here keeps its upstreams' start-up from notifying early.
		h.reconfMu.Lock()
		h.publish()
		h.reconfMu.Unlock()
	}
}

// markChanged records that an upstream's surface changed; must not block.
func (h *Hub) markChanged() {
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// publish rebuilds the view and tells every session what changed.
func (h *Hub) publish() {
	old := h.view.Load()
	nv := h.rebuild()
	changed := []struct {
		kind   uint32
		method string
		diff   bool
	}{
		{listTools, "notifications/tools/list_changed", !equalItems(old.tools, nv.tools)},
		{listPrompts, "notifications/prompts/list_changed", !equalItems(old.prompts, nv.prompts)},
		{listResources, "notifications/resources/list_changed", !equalItems(old.resources, nv.resources) || !equalItems(old.templates, nv.templates)},
	}
	sessions := h.liveSessions()
	for _, c := range changed {
		if !c.diff {
			continue
		}
		h.listeners.each(func(l *listener) { // those that asked for this kind of change
			if l.kind&c.kind != 0 {
				l.send(c.method, nil)
			}
		})
		msg := front.EncodeNotification(c.method, nil)
		// Only a session that listed can hold a stale list: the others
		// (a client still waiting for its first tools/list while the
		// upstreams start) would only be told to list twice.
		for _, s := range sessions {
			if s.listed.Load()&c.kind != 0 {
				s.fs.Send(nil, msg)
			}
		}
	}
}

// listKind bits: which lists a session asked for (session.listed).
const (
	listTools uint32 = 1 << iota
	listPrompts
	listResources
)

// waitStartup holds the first listings until every upstream finished its
// first start attempt, bounded by the startup timeout (several clients
// ignore list_changed, so a partial first list would stick).
func (h *Hub) waitStartup(ctx context.Context) {
	if h.settled.Load() {
		return
	}
	limit := startupTimeout(h.fleet.Load().cfg)
	deadline := time.Now().Add(limit)
	if st := h.started.Load(); st != 0 {
		deadline = time.Unix(0, st).Add(limit)
	}
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	settled := true
	for _, u := range h.fleet.Load().ups {
		if err := u.conn.WaitSettled(wctx); err != nil {
			settled = false
		}
	}
	if settled {
		h.publishIfStale()
		h.settled.Store(true)
	}
}

// publishIfStale makes sure a list answered right after start-up reflects
// the snapshots even if the coalescing timer has not fired yet.
func (h *Hub) publishIfStale() {
	v, f := h.view.Load(), h.fleet.Load()
	if v.fleet != f || slices.ContainsFunc(f.ups, func(u *upstream) bool { return u.conn.Snapshot().Generation != v.generations[u.name] }) {
		h.publish()
	}
}

// startupTimeout is cfg's startup_timeout, 30s if unset.
func startupTimeout(cfg config.Config) time.Duration {
	if cfg.StartupTimeout <= 0 {
		return 30 * time.Second
	}
	return cfg.StartupTimeout
}

// newTaskID returns a random task id (docs/protocol.md#task_id).
func newTaskID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "hub-" + hex.EncodeToString(b[:])
}

// view is an immutable routing snapshot: the router table plus the rendered
// list items the client sees.
type view struct {
	fleet       *fleet // the upstreams the view was built from
	table       *router.Table
	tools       []json.RawMessage // rendered, exposed names, table order
	prompts     []json.RawMessage
	resources   []json.RawMessage
	templates   []json.RawMessage
	generations map[string]uint64 // snapshot generation per upstream used

	toolDefs map[string]json.RawMessage // exposed tool → the upstream's own definition
	argNames sync.Map                   // exposed tool → *argNames, read on first call
}

// argNamesFor returns the declared property names of an exposed tool's
// inputSchema (argnames.go), reading the definition on the first call.
func (v *view) argNamesFor(exposed string) *argNames {
	if n, ok := v.argNames.Load(exposed); ok {
		return n.(*argNames)
	}
	n := argNamesOf(v.toolDefs[exposed])
	v.argNames.Store(exposed, n)
	return n
}

func equalItems(a, b []json.RawMessage) bool {
	return slices.EqualFunc(a, b, func(x, y json.RawMessage) bool { return string(x) == string(y) })
}
