package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/lmittmann/tint"

	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/authz/policy"
	"github.com/sigilcore/sigil-hub/config"
	"github.com/sigilcore/sigil-hub/hub"
)

// `sigil-hub check`: validate the setup before a client uses it (README
// "Check your setup").
// It loads the config exactly as the hub does, checks the decision point
// (Sigil Sign's health and the key, or the local policy), starts every
// upstream once, reports, and stops. `sigil-hub tools` (tools.go) shares
// the flags and the start-up.

const checkUsage = `sigil-hub check: validate the config, the decision point and every upstream, then exit.

Usage:
  sigil-hub check [--config FILE] [--only NAME] [--policy FILE] [--sign-url URL] [--key KEY] [--json]
  sigil-hub check [flags] -- COMMAND [ARGS...]
  sigil-hub check [flags] --config sigil.config.json -- COMMAND [ARGS...]
  sigil-hub check --print [--json]     print the effective config (secrets masked) and exit

It checks Sigil Sign (GET /healthz and the API key, with a dry-run
authorization that creates no hold and no attestation) or parses the local
policy, starts every upstream and prints its state, counts and start time
(with its stderr on failure), and warns about serverIds the ## mcp policy
grammar cannot express, tool counts above common client limits and long
tool names. Exit status 0: all is well (warnings may be printed);
1: something failed.

Flags:
`

// inspectFlags are the flags of `check` and `tools`.
type inspectFlags struct {
	cli   cliFlags
	json  bool
	print bool
}

// parseInspectFlags parses the flags `check` and `tools` share with the hub
// (config selection, --policy, --sign-url, --key, -- COMMAND) plus --json,
// and --print when withPrint.
func parseInspectFlags(name, usage string, withPrint bool, args []string, stderr io.Writer) (inspectFlags, []string, error) {
	var f inspectFlags
	fs := flag.NewFlagSet("sigil-hub "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.cli.config, "config", "", "hub config file (env SIGIL_HUB_CONFIG; default ./sigil-hub.toml if present); a .json file is a "+
		"@sigilcore/mcp-proxy sigil.config.json for the wrapped server (read from ./ when wrapping)")
	fs.StringVar(&f.cli.only, "only", "", "with --config: only this server, names unchanged")
	fs.StringVar(&f.cli.overlay, "overlay", "", "personal overlay on top of the config file (default <user config dir>/sigil-hub/local.toml if present; none disables)")
	fs.StringVar(&f.cli.policy, "policy", "", "a warranty.md policy that decides calls offline (config policy)")
	fs.StringVar(&f.cli.signURL, "sign-url", "", "Sigil Sign base URL (env SIGIL_SIGN_URL, config sign_url)")
	fs.StringVar(&f.cli.key, "key", "", "Sigil API key (env SIGIL_API_KEY); never printed")
	fs.StringVar(&f.cli.remote, "remote", "", "a remote MCP server URL instead of a config file")
	fs.StringVar(&f.cli.serverID, "server-id", "", "serverId of the wrapped server")
	fs.StringVar(&f.cli.serverName, "server-name", "", "display name of the wrapped server")
	fs.StringVar(&f.cli.logLevel, "log-level", "", "hub log level on stderr while upstreams start (default error)")
	fs.BoolVar(&f.json, "json", false, "machine-readable JSON on stdout")
	if withPrint {
		fs.BoolVar(&f.print, "print", false, "print the effective config with secrets masked, and exit")
	}
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f, nil, flag.ErrHelp
		}
		return f, nil, errUsage
	}
	f.cli.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.cli.set[fl.Name] = true })
	return f, fs.Args(), nil
}

// inspectLogger logs the hub's start-up on stderr: errors only unless
// --log-level asks for more (the report itself says what failed).
func inspectLogger(f inspectFlags, stderr io.Writer) (*slog.Logger, error) {
	lvl := f.cli.logLevel
	if lvl == "" {
		lvl = "error"
	}
	level, err := parseLevel(lvl)
	if err != nil {
		return nil, err
	}
	return slog.New(tint.NewHandler(stderr, &tint.Options{Level: level, TimeFormat: time.TimeOnly, NoColor: !isTerminal(stderr)})), nil
}

// inventoryKey stands in for the API key in the hub that `check` and
// `tools` start: it never authorizes anything (no tools/call is made), so
// the real key is not handed to it at all.
const inventoryKey = "sigil-hub-inventory-unused"

// takeInventory starts the configured upstreams once, waits for their first
// start attempt like the first tools/list does, and stops them again. The
// hub it builds decides nothing: the policy and the audit log are left out
// (check reports on them separately) and Sign is never contacted. Remote
// servers with oauth use the stored tokens; none starts a browser flow.
func takeInventory(ctx context.Context, cfg config.Config, single bool, environ []string, logger *slog.Logger) (inventory, error) {
	cfg.Policy, cfg.Audit, cfg.SignURL, cfg.PolicyHash = "", "", config.DefaultSignURL, ""
	h, err := hub.New(hub.Options{Config: cfg, APIKey: inventoryKey, Single: single, Environ: environ, Logger: logger, Version: version,
		OAuthDir: oauthDir(envLookup(environ)), OAuthStoredOnly: true})
	if err != nil {
		return inventory{}, err
	}
	sctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	rctx, cancel := context.WithCancel(sctx)
	done := make(chan error, 1)
	go func() { done <- h.Run(rctx) }()
	inv := inventoryOf(h.Status(rctx))
	cancel()
	if err := <-done; err != nil {
		return inv, err
	}
	return inv, sctx.Err()
}

// checkResult is one line of the checks table.
type checkResult struct {
	Name   string `json:"name"`
	Status string `json:"status"` // ok, fail, warn or skip
	Detail string `json:"detail"`
}

// checkReport is `check --json`'s output.
type checkReport struct {
	OK         bool           `json:"ok"`
	Checks     []checkResult  `json:"checks"`
	Upstreams  []jsonUpstream `json:"upstreams"`
	Warnings   []jsonWarning  `json:"warnings"`
	NotChecked []string       `json:"not_checked"`
}

type jsonUpstream struct {
	Name            string `json:"name"`
	ServerID        string `json:"server_id"`
	Target          string `json:"target"`
	State           string `json:"state"`
	Settled         bool   `json:"settled"`
	StartMillis     int64  `json:"start_ms"`
	Error           string `json:"error,omitempty"`
	Tools           int    `json:"tools"`
	Exposed         int    `json:"exposed_tools"`
	Prompts         int    `json:"prompts"`
	Resources       int    `json:"resources"`
	Templates       int    `json:"resource_templates"`
	ServerInfo      string `json:"server_info,omitempty"`
	ProtocolVersion string `json:"protocol_version,omitempty"`
}

type jsonWarning struct {
	Kind     string `json:"kind"`
	Upstream string `json:"upstream,omitempty"`
	Subject  string `json:"subject,omitempty"`
	Message  string `json:"message"`
}

func jsonUpstreams(inv inventory) []jsonUpstream {
	out := []jsonUpstream{}
	for _, u := range inv.Upstreams {
		out = append(out, jsonUpstream{
			Name: u.Name, ServerID: u.ServerID, Target: u.Target, State: u.State, Settled: u.Settled,
			StartMillis: u.StartTime.Milliseconds(), Error: u.Err, Tools: u.Tools, Exposed: u.Exposed,
			Prompts: u.Prompts, Resources: u.Resources, Templates: u.Templates,
			ServerInfo: u.ServerInfo, ProtocolVersion: u.ProtocolVersion,
		})
	}
	return out
}

func jsonWarnings(ws []warning) []jsonWarning {
	out := []jsonWarning{}
	for _, w := range ws {
		out = append(out, jsonWarning{Kind: w.Kind, Upstream: w.Upstream, Subject: w.Subject, Message: w.Message})
	}
	return out
}

func runCheck(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	getenv := envLookup(environ)
	f, command, err := parseInspectFlags("check", checkUsage, true, args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	l, err := loadConfigFrom(f.cli, "sigil-hub check", command, environ, getenv)
	if err != nil {
		return err
	}
	cfg, single := l.cfg, l.single
	path := configFile(f.cli, command, getenv)
	key, keyFrom := f.cli.key, "--key"
	if key == "" {
		key, keyFrom = getenv("SIGIL_API_KEY"), "SIGIL_API_KEY"
	}
	if f.print {
		return printConfig(stdout, f.json, l, path, overlayFile(f.cli, command, getenv), command, keyFrom, key != "")
	}

	var checks []checkResult
	enabled := 0
	for _, s := range cfg.Servers {
		if !s.Disabled {
			enabled++
		}
	}
	cfgDetail := fmt.Sprintf("%d server(s), %d enabled", len(cfg.Servers), enabled)
	switch {
	case path != "":
		cfgDetail = path + ": " + cfgDetail
	case len(command) > 0:
		cfgDetail = "wrapping one stdio server (-- " + command[0] + ")"
	case f.cli.remote != "":
		cfgDetail = "wrapping one remote server (" + redactURL(f.cli.remote) + ")"
	}
	if l.seedPath != "" {
		cfgDetail += ", settings from " + l.seedPath + " (@sigilcore/mcp-proxy format)"
	}
	checks = append(checks, checkResult{"config", "ok", cfgDetail})
	if cfg.Policy != "" {
		checks = append(checks, checkPolicy(cfg)...)
		checks = append(checks, checkResult{"sign", "skip", "not used: the local policy decides every call offline"})
	} else {
		checks = append(checks, checkSign(ctx, cfg.SignURL, key, keyFrom)...)
	}

	logger, err := inspectLogger(f, stderr)
	if err != nil {
		return err
	}
	inv, err := takeInventory(ctx, cfg, single, environ, logger)
	if err != nil {
		return err
	}
	failed := 0
	for _, c := range checks {
		if c.Status == "fail" {
			failed++
		}
	}
	for _, u := range inv.Upstreams {
		if !u.Ready {
			failed++
		}
	}
	notChecked := []string{
		"whether your policy allows each tool: that is decided per call (see the ACTION column of `sigil-hub tools`)",
	}
	if cfg.Policy == "" && cfg.Verify != "off" {
		notChecked = append(notChecked, "Sign's attestation keys (/.well-known/jwks.json): fetched on the first approval")
	}
	if f.json {
		rep := checkReport{OK: failed == 0, Checks: checks, Upstreams: jsonUpstreams(inv), Warnings: jsonWarnings(inv.Warnings), NotChecked: notChecked}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		writeCheckReport(stdout, checks, inv, notChecked)
	}
	if failed > 0 {
		return fmt.Errorf("check: %d problem(s) found", failed)
	}
	return nil
}

// writeCheckReport prints the human-readable report.
func writeCheckReport(w io.Writer, checks []checkResult, inv inventory, notChecked []string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tRESULT\tDETAIL")
	for _, c := range checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, c.Status, printable(c.Detail))
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UPSTREAM\tSERVER ID\tSTATE\tSTART\tTOOLS\tPROMPTS\tRESOURCES\tTARGET")
	for _, u := range inv.Upstreams {
		start := "-"
		if u.Settled {
			start = u.StartTime.Round(time.Millisecond).String()
		}
		state := u.State
		if !u.Settled {
			state += " (timed out)"
		}
		tools := strconv.Itoa(u.Tools)
		if u.Exposed != u.Tools {
			tools = fmt.Sprintf("%d (%d exposed)", u.Tools, u.Exposed)
		}
		res := strconv.Itoa(u.Resources)
		if u.Templates > 0 {
			res += fmt.Sprintf("+%d templates", u.Templates)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", u.Name, printable(u.ServerID), state, start, tools, u.Prompts, res, printable(clip(u.Target, 60)))
	}
	tw.Flush()
	for _, u := range inv.Upstreams {
		if u.Ready {
			continue
		}
		fmt.Fprintf(w, "\n%s failed:\n", u.Name)
		msg := u.Err
		if msg == "" {
			msg = "no answer before the startup timeout (startup_timeout)"
		}
		for line := range strings.SplitSeq(strings.TrimRight(msg, "\n"), "\n") {
			fmt.Fprintf(w, "    %s\n", printable(line))
		}
	}

	if len(inv.Warnings) > 0 {
		fmt.Fprintf(w, "\nWarnings:\n")
		for _, x := range inv.Warnings {
			who := x.Upstream
			if x.Subject != "" {
				if who != "" {
					who += ": "
				}
				who += x.Subject
			}
			if who != "" {
				who += ": "
			}
			fmt.Fprintf(w, "  [%s] %s%s\n", x.Kind, printable(who), printable(x.Message))
		}
	}
	fmt.Fprintf(w, "\nNot checked:\n")
	for _, s := range notChecked {
		fmt.Fprintf(w, "  - %s\n", s)
	}
}

// printable replaces control characters (a child's stderr may carry
// terminal escapes) so that the report cannot drive the terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' {
			return ' '
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// checkPolicy parses the local policy the way the hub does and reports its
// hash.
func checkPolicy(cfg config.Config) []checkResult {
	src, err := os.ReadFile(cfg.Policy)
	if err != nil {
		return []checkResult{{"policy", "fail", fmt.Sprintf("read %s: %v", cfg.Policy, err)}}
	}
	p, err := policy.Parse(src, policy.Options{})
	if err != nil {
		return []checkResult{{"policy", "fail", fmt.Sprintf("%s: %v", cfg.Policy, err)}}
	}
	signed := "unsigned"
	if p.Signed() {
		signed = "signed"
	}
	out := []checkResult{{"policy", "ok", fmt.Sprintf("%s: version %s, %s, policy hash %s", cfg.Policy, p.Version(), signed, p.Hash())}}
	if cfg.PolicyHash != "" && cfg.PolicyHash != p.Hash() {
		out = append(out, checkResult{"policy pin", "warn", "policy_hash " + cfg.PolicyHash + " differs from the local policy's hash (the pin applies to Sign's answers)"})
	}
	return out
}

// signStatusWord reports whether s looks like a decision literal worth
// quoting from an answer (^[A-Z_]{1,32}$): nothing else of a body is shown.
func signStatusWord(s string) bool {
	return s != "" && len(s) <= 32 && strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == ""
}

// checkSign checks Sigil Sign: GET /healthz, then the key with a dry-run
// authorization (POST /v1/authorize/test-run: no hold, no attestation, no
// side effects), falling back to a hold lookup for a made-up id when the
// service has no test-run endpoint (the local signer). The key is only
// ever sent in the Authorization header, never printed.
func checkSign(ctx context.Context, signURL, key, keyFrom string) []checkResult {
	base := strings.TrimRight(signURL, "/")
	if err := (authz.SignOptions{URL: base, APIKey: "x"}).Validate(); err != nil {
		return []checkResult{{"sign", "fail", err.Error()}}
	}
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	var out []checkResult

	health := checkResult{Name: "sign", Status: "fail"}
	if code, body, err := signGet(ctx, client, base+"/healthz", ""); err != nil {
		health.Detail = fmt.Sprintf("%s/healthz: unreachable: %v", base, err)
	} else {
		var h struct {
			Status string `json:"status"`
		}
		if code == http.StatusOK && json.Unmarshal(body, &h) == nil && h.Status == "ok" {
			health.Status, health.Detail = "ok", base+`/healthz answered {"status":"ok"}`
		} else {
			health.Detail = fmt.Sprintf("%s/healthz answered HTTP %d, not {\"status\":\"ok\"}", base, code)
		}
	}
	out = append(out, health)

	if key == "" {
		return append(out, checkResult{"api key", "fail", "no Sigil API key: set SIGIL_API_KEY (or pass --key), or decide calls offline with --policy warranty.md"})
	}
	for _, r := range key {
		if r < 0x21 || r > 0x7e {
			return append(out, checkResult{"api key", "fail", "the key from " + keyFrom + " contains a space, control or non-ASCII character"})
		}
	}
	in, err := authz.NewIntent(authz.Request{ServerID: "sigil-hub-check", Tool: "check", Arguments: []byte("{}"), TaskID: "sigil-hub-check"})
	if err != nil {
		return append(out, checkResult{"api key", "fail", "build probe: " + err.Error()})
	}
	body := authz.AuthorizeBody(in, authz.DefaultAgentID, authz.NewNonce())
	probe := base + "/v1/authorize/test-run"
	keyCheck := checkResult{Name: "api key", Status: "fail"}
	code, resp, err := signPost(ctx, client, probe, key, body)
	var r struct {
		Status string `json:"status"`
	}
	_ = json.Unmarshal(resp, &r)
	status := ""
	if signStatusWord(r.Status) {
		status = " " + r.Status
	}
	switch {
	case err != nil:
		keyCheck.Detail = fmt.Sprintf("POST %s: unreachable: %v", probe, err)
	case code == http.StatusOK || code == http.StatusAccepted || (code == http.StatusForbidden && r.Status == "DENIED"):
		keyCheck.Status = "ok"
		keyCheck.Detail = fmt.Sprintf("key from %s accepted: a dry-run authorization (test-run) answered HTTP %d%s", keyFrom, code, status)
	case code == http.StatusUnauthorized:
		keyCheck.Detail = fmt.Sprintf("key from %s rejected: the dry-run authorization answered HTTP 401 (missing or invalid API key)", keyFrom)
	case code == http.StatusForbidden:
		keyCheck.Detail = fmt.Sprintf("key from %s refused: the dry-run authorization answered HTTP 403", keyFrom)
	case code == http.StatusConflict:
		keyCheck.Detail = fmt.Sprintf("key from %s accepted, but no policy is deployed for it (HTTP 409): every call would be denied", keyFrom)
	case code == http.StatusTooManyRequests:
		keyCheck.Status, keyCheck.Detail = "warn", "not checked: the dry-run authorization was rate limited (HTTP 429)"
	case code == http.StatusNotFound || code == http.StatusMethodNotAllowed:
		keyCheck = checkKeyByHold(ctx, client, base, key, keyFrom)
	default:
		keyCheck.Detail = fmt.Sprintf("the dry-run authorization answered HTTP %d", code)
	}
	return append(out, keyCheck)
}

// checkKeyByHold checks the key with GET /v1/holds/{made-up id}: 404 means
// the key was accepted and the hold is unknown, 401 that the key was refused.
func checkKeyByHold(ctx context.Context, client *http.Client, base, key, keyFrom string) checkResult {
	var b [8]byte
	_, _ = rand.Read(b[:])
	u := base + "/v1/holds/sigil-hub-check-" + hex.EncodeToString(b[:])
	code, _, err := signGet(ctx, client, u, key)
	switch {
	case err != nil:
		return checkResult{"api key", "fail", fmt.Sprintf("GET %s/v1/holds/…: unreachable: %v", base, err)}
	case code == http.StatusNotFound || code == http.StatusOK:
		return checkResult{"api key", "ok", fmt.Sprintf("key from %s accepted: a lookup of a made-up hold answered HTTP %d (this service has no test-run endpoint)", keyFrom, code)}
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return checkResult{"api key", "fail", fmt.Sprintf("key from %s rejected: a hold lookup answered HTTP %d", keyFrom, code)}
	case code == http.StatusTooManyRequests:
		return checkResult{"api key", "warn", "not checked: the hold lookup was rate limited (HTTP 429)"}
	}
	return checkResult{"api key", "warn", fmt.Sprintf("not checked: no test-run endpoint, and a hold lookup answered HTTP %d", code)}
}

// signGet and signPost send one request and read at most 64 KiB of the
// answer. Errors never contain the key (it is only in a header).
func signGet(ctx context.Context, c *http.Client, u, key string) (int, []byte, error) {
	return signDo(ctx, c, http.MethodGet, u, key, nil)
}

func signPost(ctx context.Context, c *http.Client, u, key string, body []byte) (int, []byte, error) {
	return signDo(ctx, c, http.MethodPost, u, key, body)
}

func signDo(ctx context.Context, c *http.Client, method, u, key string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap() // drop net/url's "Get <url>:" prefix; the caller names the URL
		}
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, b, nil
}

// printConfig prints the effective configuration l with every env and
// header value masked: a value from the config file is shown as written,
// its ${VAR} references kept and nothing else (config.MaskedValues, or for
// a sigil.config.json its upstream.headers as written); a wrapped
// server's env, which comes from the hub's own environment, as $NAME; the
// API key only as set or not. path is the hub TOML read ("" = none).
func printConfig(w io.Writer, asJSON bool, l loaded, path string, o overlay, command []string, keyFrom string, haveKey bool) error {
	cfg := l.cfg
	masked := maps.Clone(l.shown)
	if masked == nil {
		masked = map[string]string{}
	}
	overlayUsed := ""
	file, format := path, ""
	if l.seedPath != "" {
		file, format = l.seedPath, seedFormat
	}
	if path != "" {
		src, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read config: %w", err)
		}
		ov, ovAbs, err := o.read()
		if err != nil {
			return err
		}
		if ov != nil {
			if src, _, err = config.MergeOverlay(src, ov, filepath.Dir(ovAbs)); err != nil {
				return err
			}
			overlayUsed = ovAbs
		}
		if masked, err = config.MaskedValues(src); err != nil {
			return err
		}
	}
	mask := func(server, table, key string) string {
		if v, ok := masked[server+"."+table+"."+key]; ok {
			return v
		}
		if len(command) > 0 && table == "env" {
			return "${" + key + "}" // wrapped: passed on from the hub's environment
		}
		return "***"
	}
	keyState := "not set"
	if haveKey {
		keyState = "set (from " + keyFrom + "; never shown)"
	}
	if asJSON {
		type jsonServer struct {
			Name        string                       `json:"name"`
			Command     string                       `json:"command,omitempty"`
			Args        []string                     `json:"args,omitempty"`
			Cwd         string                       `json:"cwd,omitempty"`
			URL         string                       `json:"url,omitempty"`
			Transport   string                       `json:"transport,omitempty"`
			Env         map[string]string            `json:"env,omitempty"`
			Headers     map[string]string            `json:"headers,omitempty"`
			ServerID    string                       `json:"server_id"`
			ServerName  string                       `json:"server_name"`
			Allow       []string                     `json:"allow,omitempty"`
			Deny        []string                     `json:"deny,omitempty"`
			Extractors  map[string]map[string]string `json:"extractors,omitempty"`
			Attestation bool                         `json:"attach_attestation"`
			Disabled    bool                         `json:"disabled"`
		}
		out := struct {
			File           string       `json:"file,omitempty"`
			FileFormat     string       `json:"file_format,omitempty"`
			Overlay        string       `json:"overlay,omitempty"`
			APIKey         string       `json:"api_key"`
			SignURL        string       `json:"sign_url"`
			LogLevel       string       `json:"log_level"`
			PendingTimeout int64        `json:"pending_timeout"`
			StartupTimeout int64        `json:"startup_timeout"`
			Separator      string       `json:"separator"`
			AgentID        string       `json:"agent_id,omitempty"`
			TaskID         string       `json:"task_id,omitempty"`
			Verify         string       `json:"verify"`
			PolicyHash     string       `json:"policy_hash,omitempty"`
			Policy         string       `json:"policy,omitempty"`
			Audit          string       `json:"audit,omitempty"`
			Servers        []jsonServer `json:"servers"`
		}{file, format, overlayUsed, keyState, redactURL(cfg.SignURL), cfg.LogLevel, cfg.PendingTimeout.Milliseconds(), cfg.StartupTimeout.Milliseconds(),
			cfg.Separator, cfg.AgentID, cfg.TaskID, cfg.Verify, cfg.PolicyHash, cfg.Policy, cfg.Audit, []jsonServer{}}
		for _, s := range cfg.Servers {
			js := jsonServer{Name: s.Name, Command: s.Command, Args: s.Args, Cwd: s.Cwd, Transport: s.Transport,
				ServerID: s.ServerID, ServerName: s.ServerName, Allow: s.Allow, Deny: s.Deny,
				Attestation: s.Attestation, Disabled: s.Disabled}
			if s.URL != "" {
				js.URL = redactURL(s.URL)
			}
			for k := range s.Env {
				if js.Env == nil {
					js.Env = map[string]string{}
				}
				js.Env[k] = mask(s.Name, "env", k)
			}
			for k := range s.Headers {
				if js.Headers == nil {
					js.Headers = map[string]string{}
				}
				js.Headers[k] = mask(s.Name, "headers", k)
			}
			for tool, x := range s.Extractors {
				if js.Extractors == nil {
					js.Extractors = map[string]map[string]string{}
				}
				m := maps.Clone(x.Fields)
				if x.Action != "" {
					m["action"] = x.Action
				}
				js.Extractors[tool] = m
			}
			out.Servers = append(out.Servers, js)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}

	var b strings.Builder
	b.WriteString("# effective sigil-hub configuration: flags, environment and file merged, defaults applied\n")
	if file != "" {
		abs, _ := filepath.Abs(file)
		if format != "" {
			fmt.Fprintf(&b, "# file: %s (%s)\n", abs, format)
		} else {
			fmt.Fprintf(&b, "# file: %s\n", abs)
		}
	}
	if overlayUsed != "" {
		fmt.Fprintf(&b, "# personal overlay: %s\n", overlayUsed)
	}
	fmt.Fprintf(&b, "# Sigil API key: %s\n", keyState)
	b.WriteString("# env and headers values are shown as written, ${VAR} references only; *** hides anything else\n\n")
	kv := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, tomlString(v)) }
	kv("sign_url", redactURL(cfg.SignURL)) // checked by authz.CheckSignURL already: no password to hide, but never print one
	kv("log_level", cfg.LogLevel)
	fmt.Fprintf(&b, "pending_timeout = %d\n", cfg.PendingTimeout.Milliseconds())
	fmt.Fprintf(&b, "startup_timeout = %d\n", cfg.StartupTimeout.Milliseconds())
	kv("separator", cfg.Separator)
	for _, o := range [][2]string{{"agent_id", cfg.AgentID}, {"task_id", cfg.TaskID}} {
		if o[1] != "" {
			kv(o[0], o[1])
		}
	}
	kv("verify", cfg.Verify)
	for _, o := range [][2]string{{"policy_hash", cfg.PolicyHash}, {"policy", cfg.Policy}, {"audit", cfg.Audit}} {
		if o[1] != "" {
			kv(o[0], o[1])
		}
	}
	for _, s := range cfg.Servers {
		fmt.Fprintf(&b, "\n[servers.%s]\n", tomlKey(s.Name))
		if s.Command != "" {
			kv("command", s.Command)
			fmt.Fprintf(&b, "args = %s\n", tomlList(s.Args))
			kv("cwd", s.Cwd)
		}
		if s.URL != "" {
			kv("url", redactURL(s.URL))
			kv("transport", s.Transport)
		}
		if len(s.Env) > 0 {
			fmt.Fprintf(&b, "env = %s\n", tomlInline(slices.Sorted(maps.Keys(s.Env)), func(k string) string { return mask(s.Name, "env", k) }))
		}
		if len(s.Headers) > 0 {
			fmt.Fprintf(&b, "headers = %s\n", tomlInline(slices.Sorted(maps.Keys(s.Headers)), func(k string) string { return mask(s.Name, "headers", k) }))
		}
		kv("server_id", s.ServerID)
		kv("server_name", s.ServerName)
		if len(s.Allow) > 0 || len(s.Deny) > 0 {
			fmt.Fprintf(&b, "tools = { allow = %s, deny = %s }\n", tomlList(s.Allow), tomlList(s.Deny))
		}
		fmt.Fprintf(&b, "attach_attestation = %t\n", s.Attestation)
		if s.Disabled {
			b.WriteString("disabled = true\n")
		}
		for _, tool := range slices.Sorted(maps.Keys(s.Extractors)) {
			x := s.Extractors[tool]
			fmt.Fprintf(&b, "\n[servers.%s.extractors.%s]\n", tomlKey(s.Name), tomlKey(tool))
			if x.Action != "" {
				kv("action", x.Action)
			}
			for _, field := range slices.Sorted(maps.Keys(x.Fields)) {
				kv(field, x.Fields[field])
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// seedFormat names the format of a sigil.config.json where `check
// --print` shows which file it read.
const seedFormat = "@sigilcore/mcp-proxy " + config.SeedFileName

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// tomlKey writes k bare when TOML allows it, else quoted.
func tomlKey(k string) string {
	if k != "" && strings.Trim(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == "" {
		return k
	}
	return tomlString(k)
}

func tomlList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = tomlString(v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func tomlInline(keys []string, val func(string) string) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = tomlKey(k) + " = " + tomlString(val(k))
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}
