package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/lmittmann/tint"
	"github.com/oklog/run"

	"github.com/sigilcore/sigil-hub/front"
	"github.com/sigilcore/sigil-hub/hub"
	"github.com/sigilcore/sigil-hub/upstreams"
)

const version = "0.1.0-dev"

// wantsHelp reports whether args ask for help: -h, -help or --help before
// any "--" (after it, the flags are the wrapped command's).
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// wantsVersion reports whether the command is `sigil-hub --version` (or
// -version, or `sigil-hub version`).
func wantsVersion(args []string) bool {
	return len(args) == 1 && (args[0] == "--version" || args[0] == "-version" || args[0] == "version")
}

// versionLine is what --version prints: the version, the commit the binary
// was built from (with "-dirty" for uncommitted changes; "unknown" when the
// build recorded none) and the Go version.
func versionLine() string {
	commit, dirty := "unknown", ""
	goVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && s.Value != "":
				commit = s.Value
			case s.Key == "vcs.modified" && s.Value == "true":
				dirty = "-dirty"
			}
		}
	}
	return "sigil-hub " + version + " (commit " + commit + dirty + ", " + goVersion + ")"
}

// errUsage marks a command-line mistake (exit code 2); the message was
// already printed.
var errUsage = errors.New("usage")

const usageText = `sigil-hub: one MCP server in front of many, every tool call authorized by Sigil Sign.

Usage:
  sigil-hub [flags] -- COMMAND [ARGS...]   wrap one stdio MCP server (names unchanged)
  sigil-hub [flags] --remote URL            wrap one remote MCP server (Streamable HTTP, falling back to SSE)
  sigil-hub [flags] --config FILE           serve every server in FILE as <name>__<tool>
  sigil-hub [flags] --config FILE --only N  serve just server N from FILE (names unchanged)
  sigil-hub --config FILE --listen ADDR     serve a team over Streamable HTTP at http://ADDR/mcp (no stdio)
  sigil-hub --init                          write a commented starter sigil-hub.toml and exit
  sigil-hub init                            the same as --init
  sigil-hub import [FILE...] [--write]      write sigil-hub.toml from your clients' MCP servers (see: sigil-hub import -h)
  sigil-hub sign --policy warranty.md       run a local Sigil signer with an approval page (see: sigil-hub sign -h)
  sigil-hub holds list|approve ID|deny ID   decide held calls from a terminal (see: sigil-hub holds -h)
  sigil-hub check [--config FILE] [--print] validate the config, Sign or the policy, and every upstream (see: sigil-hub check -h)
  sigil-hub tools [--config FILE] [--json]  list the exposed tools with upstream, serverId and intent action
  sigil-hub pins list|accept|reset          review pinned tool definitions (see: sigil-hub pins -h)
  sigil-hub oauth list|logout               the OAuth tokens kept for remote servers (see: sigil-hub oauth -h)

The MCP client talks to sigil-hub over stdin/stdout. Logs go to stderr.

Flags (precedence: flag > environment > config file > default):
`

// cliFlags are the parsed command-line flags.
type cliFlags struct {
	key, signURL, logLevel, logFormat, serverID, serverName, remote, config, only, policy, listen, audit, approvals string
	pin, pinFile, overlay                                                                                           string
	pendingTimeout, callTimeout, port                                                                               int
	bypass, init, help, openBrowser                                                                                 bool
	set                                                                                                             map[string]bool
}

func parseFlags(args []string, stderr io.Writer) (cliFlags, []string, error) {
	var f cliFlags
	fs := flag.NewFlagSet("sigil-hub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.key, "key", "", "Sigil API key (env SIGIL_API_KEY; never in a file)")
	fs.StringVar(&f.signURL, "sign-url", "", "Sigil Sign base URL (env SIGIL_SIGN_URL, config sign_url; default https://sign.sigilcore.com)")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (env SIGIL_LOG_LEVEL, config log_level; default info)")
	fs.StringVar(&f.logFormat, "log-format", "", "text or json: one JSON object per line with a stable event field (env SIGIL_LOG_FORMAT, config log_format; default text)")
	fs.StringVar(&f.serverID, "server-id", "", "serverId of the wrapped server (default: derived from the package, image or URL)")
	fs.StringVar(&f.serverName, "server-name", "", "display name of the wrapped server (default: the serverId)")
	fs.IntVar(&f.pendingTimeout, "pending-timeout", 0, "how long a held call waits for approval, in ms (env SIGIL_PENDING_TIMEOUT, config pending_timeout; default 30000)")
	fs.IntVar(&f.callTimeout, "call-timeout", 0, "budget of one tool call in ms, shared by authorization, holds and the upstream (config call_timeout; default 120000)")
	fs.BoolVar(&f.bypass, "unsafe-bypass", false, "forward calls when Sigil Sign is unreachable (never on 401/403/invalid answers); CLI only")
	fs.StringVar(&f.remote, "remote", "", "wrap the remote MCP server at this URL (Authorization header from env SIGIL_UPSTREAM_AUTH)")
	fs.StringVar(&f.config, "config", "", "hub config file (env SIGIL_HUB_CONFIG; default ./sigil-hub.toml if present); a .json file is a @sigilcore/mcp-proxy sigil.config.json (read from ./ when wrapping)")
	fs.StringVar(&f.policy, "policy", "", "decide calls offline with this warranty.md policy (config policy); no key or network needed")
	fs.StringVar(&f.overlay, "overlay", "", "personal overlay applied on top of the config file (default <user config dir>/sigil-hub/local.toml if present; none disables)")
	fs.StringVar(&f.only, "only", "", "with --config: serve only this server, names unchanged")
	fs.StringVar(&f.listen, "listen", "", "serve Streamable HTTP at http://ADDR/mcp instead of stdio (bearer tokens from env SIGIL_HUB_TOKEN_<NAME>)")
	fs.StringVar(&f.audit, "audit", "", "append one JSON line per tool call attempt to this file (config audit)")
	fs.StringVar(&f.approvals, "approvals", "", "with a local policy: serve the approval page for held calls at this loopback ADDR (default 127.0.0.1:0, URL logged; off disables)")
	fs.StringVar(&f.pin, "pin", "", "tool pinning: warn, strict or off (config pin; default warn)")
	fs.StringVar(&f.pinFile, "pin-file", "", "the tool pin store (config pin_file; default <user config dir>/sigil-hub/pins.json)")
	fs.IntVar(&f.port, "port", 0, "loopback port of the OAuth callback for servers with oauth (default 0: a free port, logged)")
	fs.BoolVar(&f.openBrowser, "open-browser", false, "open OAuth authorization URLs in the default browser (they are logged either way)")
	fs.BoolVar(&f.init, "init", false, "write a commented starter sigil-hub.toml in the current folder and exit")
	fs.BoolVar(&f.help, "help", false, "show this help")
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f, nil, flag.ErrHelp
		}
		return f, nil, errUsage
	}
	if f.help {
		fs.Usage()
		return f, nil, flag.ErrHelp
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	return f, fs.Args(), nil
}

// runMain is the whole command; tests drive it in-process.
func runMain(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if wantsHelp(args) {
		// Help is the output asked for, not an error: it goes to stdout
		// (`sigil-hub --help | less`), for every subcommand alike.
		stderr = stdout
	}
	if wantsVersion(args) {
		_, err := fmt.Fprintln(stdout, versionLine())
		return err
	}
	if len(args) > 0 {
		switch args[0] {
		case "sign":
			return runSign(ctx, args[1:], environ, stdout, stderr)
		case "holds":
			return runHolds(ctx, args[1:], environ, stdout, stderr)
		case "import":
			return runImport(ctx, args[1:], environ, stdin, stdout, stderr)
		case "init":
			return writeStarter(stderr)
		case "check":
			return runCheck(ctx, args[1:], environ, stdout, stderr)
		case "tools":
			return runTools(ctx, args[1:], environ, stdout, stderr)
		case "pins":
			return runPins(ctx, args[1:], environ, stdout, stderr)
		case "oauth":
			return runOAuth(ctx, args[1:], environ, stdout, stderr)
		}
	}
	getenv := envLookup(environ)
	f, command, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if f.init {
		return writeStarter(stderr)
	}
	if getenv("SIGIL_UNSAFE_BYPASS") != "" {
		return errors.New("SIGIL_UNSAFE_BYPASS is not honoured: the bypass is a CLI-only flag (--unsafe-bypass); unset the variable")
	}

	cfg, single, cfgNote, err := loadConfigNoted(f, command, environ, getenv)
	if err != nil {
		return err
	}
	level, err := parseLevel(cfg.LogLevel)
	if err != nil {
		return err
	}
	apprAddr, err := approvalsAddr(f.approvals, cfg.Policy != "")
	if err != nil {
		return err
	}
	key := f.key
	if key == "" {
		key = getenv("SIGIL_API_KEY")
	}
	if f.port < 0 || f.port > 65535 {
		return fmt.Errorf("--port %d: want 0 (a free port) to 65535", f.port)
	}
	secrets := secretsOf(key, environ, cfg)
	levelVar := new(slog.LevelVar)
	levelVar.Set(level)
	redact := newRedactWriter(stderr, secrets)
	var handler slog.Handler = tint.NewHandler(redact, &tint.Options{Level: levelVar, TimeFormat: time.TimeOnly, NoColor: !isTerminal(stderr)})
	if cfg.LogFormat == "json" {
		handler = slog.NewJSONHandler(redact, &slog.HandlerOptions{Level: levelVar})
	}
	logger := slog.New(handler)
	h, err := hub.New(hub.Options{
		Config:  cfg,
		APIKey:  key,
		Bypass:  f.bypass,
		Single:  single,
		Environ: environ,
		Logger:  logger,
		Version: version,
		Secrets: secrets,

		OAuthDir:      oauthDir(getenv),
		OAuthCallback: fmt.Sprintf("127.0.0.1:%d", f.port),
		OpenBrowser:   browserOpener(f.openBrowser),
	})
	if err != nil {
		return err
	}
	if cfgNote != "" {
		logger.Info(cfgNote)
	}
	if f.bypass {
		logger.Warn("--unsafe-bypass is set: calls are forwarded UNGOVERNED whenever Sigil Sign is unreachable")
	}

	var g run.Group
	g.Add(run.SignalHandler(ctx, os.Interrupt, syscall.SIGTERM))
	hctx, hcancel := context.WithCancel(ctx)
	g.Add(func() error { return h.Run(hctx) }, func(error) { hcancel() })
	if path := configFile(f, command, getenv); path != "" {
		files := []string{path}
		if o := overlayFile(f, command, getenv); o.path != "" {
			files = append(files, o.path)
		}
		r := &reloader{f: f, command: command, environ: environ, getenv: getenv, key: key, h: h,
			log: logger.With("component", "reload"), level: levelVar, redact: redact, files: files, policy: cfg.Policy}
		rctx, rcancel := context.WithCancel(ctx)
		g.Add(func() error { return r.run(rctx) }, func(error) { rcancel() })
	}
	if apprAddr != "" {
		appr, err := newApprovals(apprAddr, h, getenv, logger)
		if err != nil {
			return err
		}
		g.Add(appr.serve, appr.stop)
	}
	if f.listen != "" {
		srv, hf, ln, err := listenHTTP(f.listen, environ, h, logger)
		if err != nil {
			return err
		}
		g.Add(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		}, func(error) {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
			hf.Close()
		})
		return g.Run()
	}
	beforeStdio()
	sctx, scancel := context.WithCancel(ctx)
	g.Add(func() error {
		err := front.ServeStdio(sctx, h, stdin, stdout, logger)
		logger.Debug("client disconnected; shutting down")
		return err
	}, func(error) { scancel() })
	return g.Run()
}

// beforeStdio runs when the hub is about to serve its client over stdio:
// main sets it (main.go: stdioProcs); runMain called in process, as tests
// do, leaves the process's scheduler alone.
var beforeStdio = func() {}

// listenHTTP prepares the Streamable HTTP front. Bearer tokens come from
// SIGIL_HUB_TOKEN_<NAME> variables (the name labels the client in logs and
// becomes Sign's agentId). A non-loopback address needs at least one token.
func listenHTTP(addr string, environ []string, h *hub.Hub, logger *slog.Logger) (*http.Server, *front.HTTP, net.Listener, error) {
	tokens, err := hubTokens(environ)
	if err != nil {
		return nil, nil, nil, err
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--listen %q: want HOST:PORT, e.g. 127.0.0.1:8080", addr)
	}
	ip := net.ParseIP(host)
	loopback := host == "localhost" || (ip != nil && ip.IsLoopback())
	if !loopback && len(tokens) == 0 {
		return nil, nil, nil, fmt.Errorf("--listen %s is not a loopback address: set at least one SIGIL_HUB_TOKEN_<NAME> bearer token first", addr)
	}
	opts := front.HTTPOptions{Tokens: tokens, Logger: logger}
	if !loopback {
		opts.AllowedHosts = []string{"*"} // authenticated by token; DNS rebinding targets loopback binds
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--listen: %w", err)
	}
	ln = front.LimitListener(ln, 0) // docs/faults.md case 68: a bound on open connections
	if len(tokens) == 0 {
		logger.Warn("serving HTTP without bearer tokens: any local process can use this hub (set SIGIL_HUB_TOKEN_<NAME> to require one)")
	}
	logger.Info("serving MCP over Streamable HTTP", "url", "http://"+ln.Addr().String()+"/mcp", "tokens", len(tokens))
	hf := front.NewHTTP(h, opts)
	srv := &http.Server{Handler: hf, ReadHeaderTimeout: 10 * time.Second}
	return srv, hf, ln, nil
}

// minTokenLen is the shortest SIGIL_HUB_TOKEN_<NAME> value accepted: a
// bearer token is the only thing between a network client and every
// upstream, so it must be long enough not to be guessed (`openssl rand -hex
// 32` gives 64 characters).
const minTokenLen = 32

// hubTokens reads the SIGIL_HUB_TOKEN_<NAME> bearer tokens: token → client
// name. The name is shown in lower case (it labels the session in logs and
// is Sign's agentId), so two variables whose names differ only in case
// would be one client sharing sessions: that, a token shorter than
// minTokenLen and one token under two names are refused. Errors name the
// variable, never its value.
func hubTokens(environ []string) (map[string]string, error) {
	vars := map[string]string{} // variable → token; a later duplicate wins, like getenv
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if name, found := strings.CutPrefix(k, "SIGIL_HUB_TOKEN_"); ok && found && name != "" {
			vars[k] = v
		}
	}
	tokens := map[string]string{}  // token → client name
	byName := map[string]string{}  // client name → variable
	byToken := map[string]string{} // token → variable
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		v := vars[k]
		if v == "" {
			continue
		}
		client := strings.ToLower(strings.TrimPrefix(k, "SIGIL_HUB_TOKEN_"))
		if first, dup := byName[client]; dup {
			errs = append(errs, fmt.Errorf("%s and %s both name the client %q (token names must differ in more than case): rename one", first, k, client))
			continue
		}
		byName[client] = k
		if len(v) < minTokenLen {
			errs = append(errs, fmt.Errorf("%s is shorter than %d characters: use a random bearer token at least that long, for example the output of `openssl rand -hex 32`", k, minTokenLen))
			continue
		}
		if first, dup := byToken[v]; dup {
			errs = append(errs, fmt.Errorf("%s and %s hold the same token: give each client its own", first, k))
			continue
		}
		byToken[v] = k
		tokens[v] = client
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return tokens, nil
}

var nonName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// namespaceFor makes an upstream name from a serverId (single-wrap modes,
// where the name only labels logs).
func namespaceFor(id string) string {
	n := strings.Trim(nonName.ReplaceAllString(id, "_"), "_")
	if n == "" {
		n = "upstream"
	}
	if len(n) > 32 {
		n = n[:32]
	}
	return n
}

// hubVariables are the hub's own settings: never passed on. Its secrets
// (the API key, the client tokens, the upstream authorization) are
// upstreams.HubSecret's list, which every child's environment is stripped of.
var hubVariables = map[string]bool{
	"SIGIL_SIGN_URL": true, "SIGIL_LOG_LEVEL": true, "SIGIL_LOG_FORMAT": true, "SIGIL_PENDING_TIMEOUT": true,
	"SIGIL_HUB_CONFIG": true, "SIGIL_UNSAFE_BYPASS": true,
}

// wrappedEnv is the environment of a server wrapped with `--`: the client's
// mcpServers entry sets env for that server, so it gets the hub's
// environment minus the hub's own variables and secrets (the API key and
// the client tokens above all).
func wrappedEnv(environ []string) map[string]string {
	out := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || hubVariables[strings.ToUpper(k)] || upstreams.HubSecret(k) {
			continue
		}
		out[k] = v
	}
	return out
}

func pick(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func envLookup(environ []string) func(string) string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return func(k string) string { return m[k] }
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
