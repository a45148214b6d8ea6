package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/lmittmann/tint"
	"github.com/oklog/run"

	"github.com/sigilcore/sigil-hub/authz/policy"
	"github.com/sigilcore/sigil-hub/signer"
)

// `sigil-hub sign`: a local Sigil Sign for offline use, and `sigil-hub
// holds`: its command-line approval surface.

const signUsage = `sigil-hub sign: a local Sigil Sign that decides tool calls with a warranty.md policy.

Usage:
  sigil-hub sign --policy warranty.md [--listen 127.0.0.1:8787] [--key-file PATH] [--decision-log FILE]

Point sigil-hub (or any Sigil client) at it with --sign-url http://127.0.0.1:8787.
Calls the policy holds for approval wait on the approval page it prints, or
for ` + "`sigil-hub holds`" + `. Holds live in memory: a restart forgets them (waiting
calls are then denied, never approved). If SIGIL_API_KEY is set, /v1/* accepts
only that bearer key; otherwise any non-empty bearer key.

Flags:
`

const holdsUsage = `sigil-hub holds: list, approve or deny the calls a local signer, or a hub
running with --policy, holds. --sign-url is the signer's URL or the hub's
approval page URL (both are logged at start).

Usage:
  sigil-hub holds list          [--sign-url URL] [--token-file PATH]
  sigil-hub holds approve ID    [--sign-url URL] [--token-file PATH]
  sigil-hub holds deny ID       [--sign-url URL] [--token-file PATH]

Flags:
`

const defaultSignListen = "127.0.0.1:8787"

// signerConfigDir is <user config dir>/sigil-hub, resolved from the injected
// environment on Unix (XDG_CONFIG_HOME, else $HOME/.config, as
// os.UserConfigDir does) so that tests stay hermetic.
func signerConfigDir(getenv func(string) string) (string, error) {
	switch runtime.GOOS {
	case "windows", "darwin", "ios", "plan9":
		d, err := os.UserConfigDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(d, "sigil-hub"), nil
	}
	if d := getenv("XDG_CONFIG_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "sigil-hub"), nil
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "sigil-hub"), nil
	}
	return "", errors.New("cannot find the user config folder: neither XDG_CONFIG_HOME nor HOME is set")
}

// writePrivateFile writes data to path (mode 0600, folder 0700) atomically:
// a reader sees the old content or the new, never a part.
func writePrivateFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(f.Name(), 0o600)
	}
	if werr == nil {
		werr = os.Rename(f.Name(), path)
	}
	if werr != nil {
		os.Remove(f.Name())
	}
	return werr
}

// isLoopbackListen reports whether a listen address binds loopback only.
func isLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func runSign(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	getenv := envLookup(environ)
	fs := flag.NewFlagSet("sigil-hub sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	policyPath := fs.String("policy", "", "warranty.md policy to decide calls with (required)")
	listen := fs.String("listen", defaultSignListen, "address to listen on (loopback only unless --listen-public)")
	public := fs.Bool("listen-public", false, "allow a non-loopback --listen address (requires SIGIL_API_KEY; the admin surface stays loopback-only)")
	keyFile := fs.String("key-file", "", "Ed25519 signing key, created on first run (default <config dir>/sigil-hub/signer-ed25519.key)")
	decisionLog := fs.String("decision-log", "", "append one JSON line per decision to this file")
	tokenFile := fs.String("token-file", "", "where to write the admin token for `sigil-hub holds` (default <config dir>/sigil-hub/signer-admin-token)")
	addrFile := fs.String("addr-file", "", "write the bound address (host:port) to this file once listening")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (env SIGIL_LOG_LEVEL; default info)")
	fs.Usage = func() {
		fmt.Fprint(stderr, signUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sigil-hub sign: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if *policyPath == "" {
		return errors.New("sign: --policy is required: the warranty.md the signer decides calls with")
	}
	level, err := parseLevel(pick(*logLevel, getenv("SIGIL_LOG_LEVEL")))
	if err != nil {
		return err
	}
	logger := slog.New(tint.NewHandler(stderr, &tint.Options{Level: level, TimeFormat: time.TimeOnly, NoColor: !isTerminal(stderr)}))

	apiKey := getenv("SIGIL_API_KEY")
	if !isLoopbackListen(*listen) {
		if !*public {
			return fmt.Errorf("sign: refusing to listen on %q: the signer approves tool calls, so by default only this machine may reach it; "+
				"use a loopback address (127.0.0.1:PORT), or pass --listen-public (with SIGIL_API_KEY set) to expose /v1 to the network", *listen)
		}
		if apiKey == "" {
			return errors.New("sign: --listen-public needs SIGIL_API_KEY: a public signer must not approve calls for anyone who asks")
		}
	}

	src, err := os.ReadFile(*policyPath)
	if err != nil {
		return fmt.Errorf("sign: policy: %w", err)
	}
	pol, err := policy.Parse(src, policy.Options{})
	if err != nil {
		return fmt.Errorf("sign: policy %s: %w", *policyPath, err)
	}
	cfgDir := ""
	if *keyFile == "" || *tokenFile == "" {
		if cfgDir, err = signerConfigDir(getenv); err != nil {
			return fmt.Errorf("sign: %w (pass --key-file and --token-file)", err)
		}
	}
	if *keyFile == "" {
		*keyFile = filepath.Join(cfgDir, "signer-ed25519.key")
	}
	if *tokenFile == "" {
		*tokenFile = filepath.Join(cfgDir, "signer-admin-token")
	}
	key, kid, err := signer.LoadOrCreateKey(*keyFile)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	var dlog io.Writer
	if *decisionLog != "" {
		f, err := os.OpenFile(*decisionLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("sign: decision log: %w", err)
		}
		defer f.Close()
		dlog = f
	}
	srv := signer.New(signer.Options{Policy: pol, Key: key, Kid: kid, APIKey: apiKey, Logger: logger, DecisionLog: dlog})

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("sign: listen: %w", err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	if err := writePrivateFile(*tokenFile, []byte(srv.AdminToken()+"\n")); err != nil {
		return fmt.Errorf("sign: admin token file: %w", err)
	}
	defer removeIfOurs(*tokenFile, srv.AdminToken()+"\n")
	// Also by port, so that `sigil-hub holds --sign-url` finds this
	// signer's token even when a --policy hub or another signer runs too.
	if cfgDir == "" {
		cfgDir, _ = signerConfigDir(getenv)
	}
	if cfgDir != "" {
		if p, err := adminTokenPath(cfgDir, addr); err == nil {
			if err := writePrivateFile(p, []byte(srv.AdminToken()+"\n")); err != nil {
				logger.Warn("writing the per-port admin token file failed", "err", err)
			} else {
				defer removeIfOurs(p, srv.AdminToken()+"\n")
			}
		}
	}
	if *addrFile != "" {
		if err := writePrivateFile(*addrFile, []byte(addr)); err != nil {
			return fmt.Errorf("sign: addr file: %w", err)
		}
	}

	base := "http://" + addr
	pageHost := addr
	if !isLoopbackListen(addr) { // --listen-public: the page is still loopback-only
		_, port, _ := net.SplitHostPort(addr)
		pageHost = net.JoinHostPort("127.0.0.1", port)
	}
	logger.Info("sigil signer listening", "url", base, "policy", *policyPath, "policy_hash", pol.Hash(), "kid", kid, "key_file", *keyFile)
	logApprovalPage(logger, pageHost, srv.AdminToken())
	logger.Info("point the hub at this signer", "flag", "--sign-url "+base, "holds", "sigil-hub holds list --sign-url "+base)
	if apiKey == "" {
		logger.Info("SIGIL_API_KEY is not set: /v1 accepts any non-empty bearer key")
	}

	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)}
	var g run.Group
	g.Add(run.SignalHandler(ctx, os.Interrupt, syscall.SIGTERM))
	g.Add(func() error {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("sign: serve: %w", err)
		}
		return nil
	}, func(error) {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			hs.Close()
		}
	})
	err = g.Run()
	logger.Info("sigil signer stopped; its holds are forgotten")
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// removeIfOurs deletes the admin token file unless another signer has
// since replaced it.
func removeIfOurs(path, content string) {
	if b, err := os.ReadFile(path); err == nil && string(b) == content {
		os.Remove(path)
	}
}

func runHolds(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	getenv := envLookup(environ)
	fs := flag.NewFlagSet("sigil-hub holds", flag.ContinueOnError)
	fs.SetOutput(stderr)
	signURL := fs.String("sign-url", "http://"+defaultSignListen, "the local signer's URL, or the approval page URL of a hub running with --policy")
	tokenFile := fs.String("token-file", "", "the admin token file (default: the one `sigil-hub sign` or the hub wrote for that port in <config dir>/sigil-hub/admin-tokens/, else <config dir>/sigil-hub/signer-admin-token)")
	fs.Usage = func() {
		fmt.Fprint(stderr, holdsUsage)
		fs.PrintDefaults()
	}
	// Flags may come before, between or after the positional arguments.
	var pos []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	verb := ""
	if len(pos) > 0 {
		verb = pos[0]
	}
	switch {
	case verb == "list" && len(pos) == 1:
	case (verb == "approve" || verb == "deny") && len(pos) == 2 && pos[1] != "":
	default:
		fs.Usage()
		return errUsage
	}
	base := strings.TrimRight(*signURL, "/")
	if *tokenFile == "" {
		dir, err := signerConfigDir(getenv)
		if err != nil {
			return fmt.Errorf("holds: %w (pass --token-file)", err)
		}
		*tokenFile = holdsTokenFile(dir, base)
	}
	tok, err := os.ReadFile(*tokenFile)
	if err != nil {
		return fmt.Errorf("holds: cannot read the admin token (%v): is `sigil-hub sign` (or a hub with --policy) running at %s? it writes the token there", err, base)
	}
	c := adminClient{base: base, token: strings.TrimSpace(string(tok)),
		http: &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if verb == "list" {
		var out struct {
			Holds []signer.HoldInfo `json:"holds"`
		}
		if err := c.do(ctx, http.MethodGet, "/admin/holds", &out); err != nil {
			return err
		}
		return printHolds(stdout, out.Holds, time.Now())
	}
	var out struct {
		Hold signer.HoldInfo `json:"hold"`
	}
	if err := c.do(ctx, http.MethodPost, "/admin/holds/"+url.PathEscape(pos[1])+"/"+verb, &out); err != nil {
		return err
	}
	past := map[string]string{"approve": "approved", "deny": "denied"}[verb]
	fmt.Fprintf(stdout, "%s %s (%s)\n", past, out.Hold.ID, holdLabel(out.Hold))
	return nil
}

// adminClient calls a signer's admin JSON API with the admin token.
type adminClient struct {
	base, token string
	http        *http.Client
}

func (c adminClient) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return fmt.Errorf("holds: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("holds: no signer answered at %s (%v): start one with `sigil-hub sign --policy warranty.md` or pass --sign-url", c.base, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	switch resp.StatusCode {
	case http.StatusOK:
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("holds: unexpected answer from %s: %v", c.base, err)
		}
		return nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("holds: the signer at %s refused the admin token (HTTP %d): use the token file of the running `sigil-hub sign` (--token-file), and a loopback --sign-url", c.base, resp.StatusCode)
	case http.StatusNotFound, http.StatusConflict:
		return fmt.Errorf("holds: %s", pick(e.Error, resp.Status))
	}
	return fmt.Errorf("holds: unexpected HTTP %d from %s: %s", resp.StatusCode, c.base, pick(e.Error, strings.TrimSpace(string(body))))
}

func holdLabel(h signer.HoldInfo) string {
	if h.Tool != "" {
		return h.ServerID + " " + h.Tool
	}
	return h.Action
}

func printHolds(w io.Writer, holds []signer.HoldInfo, now time.Time) error {
	if len(holds) == 0 {
		_, err := fmt.Fprintln(w, "no holds")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tAGE\tSERVER\tTOOL\tAGENT\tARGUMENTS")
	for _, h := range holds {
		args := string(h.Arguments)
		if len([]rune(args)) > 60 {
			args = string([]rune(args)[:59]) + "…"
		}
		args = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return ' '
			}
			return r
		}, args)
		server, tool := h.ServerID, h.Tool
		if tool == "" {
			server, tool = "-", h.Action
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.ID, h.State, now.Sub(h.Created).Round(time.Second), server, tool, h.AgentID, args)
	}
	return tw.Flush()
}
