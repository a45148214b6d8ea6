package main

import (
	"bufio"
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
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lmittmann/tint"
	"github.com/oklog/run"
	"golang.org/x/text/width"

	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/authz/policy"
	"github.com/sigilcore/sigil-hub/internal/privatefile"
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
  sigil-hub holds show ID       [--sign-url URL] [--token-file PATH]
  sigil-hub holds approve ID    [--sign-url URL] [--token-file PATH]
  sigil-hub holds deny ID       [--sign-url URL] [--token-file PATH]

list shows every hold with its complete arguments, wrapped to the terminal
(or $COLUMNS, else 100 columns), never cut; show prints one hold with every
field and its arguments indented. Characters a terminal would not show as
themselves (control, bidirectional and invisible ones) are shown as escapes
such as \u001b or \u202e, and a backslash outside the arguments as \\.
--sign-url must be https, or http to a loopback address: the admin token
is sent there.

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
func writePrivateFile(path string, data []byte) error { return privatefile.Write(path, data) }

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
	case (verb == "show" || verb == "approve" || verb == "deny") && len(pos) == 2 && pos[1] != "":
	default:
		fs.Usage()
		return errUsage
	}
	// The admin token goes to this URL: https, or http to loopback only.
	base, err := authz.CheckSignURL(*signURL)
	if err != nil {
		return fmt.Errorf("holds: --sign-url %v; the admin token is sent there (use the http://127.0.0.1:PORT URL the signer or hub logged)", err)
	}
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
	if verb == "list" || verb == "show" {
		var out struct {
			Holds []authz.HoldInfo `json:"holds"`
		}
		if err := c.do(ctx, http.MethodGet, "/admin/holds", &out); err != nil {
			return err
		}
		if verb == "list" {
			return printHolds(stdout, out.Holds, time.Now(), holdsWidth(stdout, getenv))
		}
		for _, h := range out.Holds {
			if h.ID == pos[1] {
				return printHold(stdout, h, time.Now())
			}
		}
		return fmt.Errorf("holds: no such hold %s at %s (`sigil-hub holds list` shows the holds it knows)", signer.Visible(pos[1]), base)
	}
	var out struct {
		Hold authz.HoldInfo `json:"hold"`
	}
	if err := c.do(ctx, http.MethodPost, "/admin/holds/"+url.PathEscape(pos[1])+"/"+verb, &out); err != nil {
		return err
	}
	past := map[string]string{"approve": "approved", "deny": "denied"}[verb]
	fmt.Fprintf(stdout, "%s %s (%s)\n", past, cell(out.Hold.ID), holdLabel(out.Hold))
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

// holdLabel names a hold's call in one line, every field escaped.
func holdLabel(h authz.HoldInfo) string {
	if h.Tool != "" {
		return signer.Visible(h.ServerID) + " " + signer.Visible(h.Tool)
	}
	return signer.Visible(h.Action)
}

// holdsWidth is the width `holds list` wraps arguments to: the terminal's,
// else $COLUMNS, else 100 columns; never less than 40.
func holdsWidth(w io.Writer, getenv func(string) string) int {
	n := 0
	if f, ok := w.(*os.File); ok && isTerminal(w) {
		n = terminalColumns(f)
	}
	if n <= 0 {
		n, _ = strconv.Atoi(strings.TrimSpace(getenv("COLUMNS")))
	}
	if n <= 0 {
		n = 100
	}
	return max(n, 40)
}

// cell is one field of the hold table: escaped, "-" when empty, quoted when
// it has spaces or quotes (so that it reads as one field).
func cell(s string) string {
	v := signer.Visible(s)
	switch {
	case v == "":
		return "-"
	case strings.ContainsAny(v, ` "`):
		return `"` + strings.ReplaceAll(v, `"`, `\"`) + `"`
	}
	return v
}

// columns is how many terminal columns s takes (East Asian wide characters
// two, combining marks none).
func columns(s string) int {
	n := 0
	for _, r := range s {
		n += runeColumns(r)
	}
	return n
}

func runeColumns(r rune) int {
	switch {
	case unicode.In(r, unicode.Mn, unicode.Me):
		return 0
	case width.LookupRune(r).Kind() == width.EastAsianWide || width.LookupRune(r).Kind() == width.EastAsianFullwidth:
		return 2
	}
	return 1
}

// wrapLines cuts s into lines of at most n columns (at least one unit per
// line), never inside an escape (\u202e, \x1b, \").
func wrapLines(s string, n int) []string {
	var lines []string
	start, cols := 0, 0
	for i := 0; i < len(s); {
		unit := 1
		if s[i] == '\\' && i+1 < len(s) {
			unit = 2
			switch s[i+1] {
			case 'u':
				unit = 6
			case 'x':
				unit = 4
			}
			unit = min(unit, len(s)-i)
		} else {
			_, unit = utf8.DecodeRuneInString(s[i:])
		}
		w := columns(s[i : i+unit])
		if cols > 0 && cols+w > n {
			lines = append(lines, s[start:i])
			start, cols = i, 0
		}
		cols += w
		i += unit
	}
	return append(lines, s[start:])
}

// printHolds prints every hold: one row of its fields, then its complete
// arguments (compact JSON, escaped) wrapped to wrap columns under it.
func printHolds(w io.Writer, holds []authz.HoldInfo, now time.Time, wrap int) error {
	if len(holds) == 0 {
		_, err := fmt.Fprintln(w, "no holds")
		return err
	}
	const indent = "    "
	rows := [][]string{{"ID", "STATE", "AGE", "SERVER", "TOOL", "AGENT"}}
	for _, h := range holds {
		server, tool := cell(h.ServerID), cell(h.Tool)
		if h.Tool == "" {
			server, tool = "-", cell(h.Action)
		}
		rows = append(rows, []string{cell(h.ID), cell(h.State), now.Sub(h.Created).Round(time.Second).String(), server, tool, cell(h.AgentID)})
	}
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], columns(c))
		}
	}
	bw := bufio.NewWriter(w)
	for i, row := range rows {
		for j, c := range row {
			if j == len(row)-1 {
				fmt.Fprintln(bw, c)
				break
			}
			fmt.Fprint(bw, c, strings.Repeat(" ", widths[j]-columns(c)+2))
		}
		if i == 0 {
			continue
		}
		for _, l := range wrapLines(signer.CompactArguments(holds[i-1].Arguments), wrap-len(indent)) {
			fmt.Fprintln(bw, indent+l)
		}
	}
	return bw.Flush()
}

// printHold prints one hold completely: every field, escaped, and its
// arguments indented.
func printHold(w io.Writer, h authz.HoldInfo, now time.Time) error {
	bw := bufio.NewWriter(w)
	field := func(name, value string) {
		fmt.Fprintf(bw, "%-10s %s\n", name, value)
	}
	field("hold", cell(h.ID))
	field("state", cell(h.State))
	field("created", h.Created.Local().Format(time.DateTime)+" ("+now.Sub(h.Created).Round(time.Second).String()+" ago)")
	field("server", cell(h.ServerID))
	field("tool", cell(h.Tool))
	field("action", cell(h.Action))
	field("agent", cell(h.AgentID))
	field("task", cell(h.TaskID))
	field("rule", cell(h.Rule))
	field("tx_commit", cell(h.TxCommit))
	if h.Consumed {
		field("consumed", "yes: the approved call was re-submitted")
	}
	field("arguments", fmt.Sprintf("%d bytes, all shown (\\u escapes stand for control, bidirectional and invisible characters):", len(h.Arguments)))
	fmt.Fprintln(bw, signer.PrettyArguments(h.Arguments))
	return bw.Flush()
}
