package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/sigilcore/sigil-hub/config"
	"github.com/sigilcore/sigil-hub/hub"
	"github.com/sigilcore/sigil-hub/upstreams"
)

// oauthDir is <user config dir>/sigil-hub/oauth, or "" (tokens in memory
// only) when there is no config folder.
func oauthDir(getenv func(string) string) string {
	dir, err := signerConfigDir(getenv)
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "oauth")
}

// browserOpener returns the --open-browser hook: nil when off, else a
// function that starts the platform's URL opener and reaps it.
func browserOpener(on bool) func(string) error {
	if !on {
		return nil
	}
	return func(url string) error {
		var cmd *exec.Cmd
		switch runtime.GOOS {
		case "windows":
			cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
		case "darwin":
			cmd = exec.Command("open", url)
		default:
			cmd = exec.Command("xdg-open", url)
		}
		cmd.Env = upstreams.WithoutHubSecrets(os.Environ()) // the browser never gets the hub's secrets
		// The opener returns at once (the browser keeps running on its
		// own); Run waits for it, so no child is left unreaped.
		return cmd.Run()
	}
}

const oauthUsage = `sigil-hub oauth: the OAuth tokens the hub keeps for remote servers with oauth.

Usage:
  sigil-hub oauth list [--config FILE]              each oauth server: authorized or not, expiry, token file
  sigil-hub oauth logout [--config FILE] NAME...    forget a server's tokens (the next run authorizes again)
  sigil-hub oauth logout [--config FILE] --all      forget the tokens of every oauth server in the config

Tokens live in <user config dir>/sigil-hub/oauth, one file per serverId, mode
0600; this command never prints a token. Logging out removes the local file
only: revoke the grant at the provider as well if it may have leaked.

Flags:
`

// runOAuth is `sigil-hub oauth list|logout`.
func runOAuth(_ context.Context, args, environ []string, stdout, stderr io.Writer) error {
	getenv := envLookup(environ)
	var f cliFlags
	fl := flag.NewFlagSet("sigil-hub oauth", flag.ContinueOnError)
	fl.StringVar(&f.config, "config", "", "hub config file (env SIGIL_HUB_CONFIG; default ./sigil-hub.toml if present); a .json file is a "+
		"@sigilcore/mcp-proxy sigil.config.json, whose wrapped server uses no OAuth")
	fl.StringVar(&f.overlay, "overlay", "", "personal overlay on top of the config file (default <user config dir>/sigil-hub/local.toml if present; none disables)")
	all := fl.Bool("all", false, "with logout: every oauth server in the config")
	verb, help, err := parseVerb(fl, oauthUsage, stderr, args)
	if help || err != nil {
		return err
	}
	f.set = map[string]bool{}
	fl.Visit(func(x *flag.Flag) { f.set[x.Name] = true })
	dir := oauthDir(getenv)
	if dir == "" {
		return errors.New("no user config folder (set HOME or XDG_CONFIG_HOME): the hub keeps OAuth tokens in memory only")
	}
	var servers []config.Server
	seed := seedFile(f, nil, getenv)
	if seed != "" {
		// A sigil.config.json configures one wrapped server (-- COMMAND or
		// --remote URL), which authorizes with its upstream.headers and
		// never with OAuth: it is checked as the hub reads it, and has no
		// oauth server.
		if _, err := readSeedFile(seed, getenv); err != nil {
			return err
		}
	} else {
		cfg, _, err := loadConfig(f, nil, environ, getenv)
		if err != nil {
			return err
		}
		for _, s := range cfg.Servers {
			if s.OAuth != nil {
				servers = append(servers, s)
			}
		}
	}
	switch {
	case verb == "list" && fl.NArg() == 0 && !*all && seed != "":
		fmt.Fprintf(stdout, "no server in %s uses oauth: it is a @sigilcore/mcp-proxy %s, whose wrapped server sends its upstream.headers "+
			"(OAuth is set per server in a hub TOML file: oauth = true)\n", seed, config.SeedFileName)
		return nil
	case verb == "list" && fl.NArg() == 0 && !*all:
		return printOAuth(stdout, dir, servers)
	case verb == "logout" && (fl.NArg() > 0) != *all:
		pick := servers
		if !*all {
			pick = nil
			for _, name := range fl.Args() {
				i := slices.IndexFunc(servers, func(s config.Server) bool { return s.Name == name })
				if i < 0 {
					return fmt.Errorf("logout %s: no server %q with oauth in the config", name, name)
				}
				pick = append(pick, servers[i])
			}
		}
		for _, s := range pick {
			file := hub.OAuthTokenFile(dir, s.ServerID)
			switch err := os.Remove(file); {
			case errors.Is(err, fs.ErrNotExist):
				fmt.Fprintf(stdout, "%s: no tokens stored\n", s.Name)
			case err != nil:
				return fmt.Errorf("logout %s: %w", s.Name, err)
			default:
				fmt.Fprintf(stdout, "%s: tokens removed (%s); the next run asks for a new authorization\n", s.Name, file)
			}
		}
		return nil
	}
	fl.Usage()
	return errUsage
}

// printOAuth prints one line per oauth server: never a token.
func printOAuth(w io.Writer, dir string, servers []config.Server) error {
	if len(servers) == 0 {
		fmt.Fprintln(w, "no server in the config uses oauth")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tSERVER ID\tSTATE\tEXPIRES\tTOKEN FILE")
	now := time.Now()
	for _, s := range servers {
		file := hub.OAuthTokenFile(dir, s.ServerID)
		state, expires := "not authorized", "-"
		info, err := upstreams.ReadTokenInfo(file)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			file = "-"
		case err != nil:
			state = "unreadable: " + err.Error()
		case info.ServerURL != s.URL:
			state = "stored for another URL (ignored)"
		case info.Authorized && info.Refreshable:
			state = "authorized (refreshable)"
		case info.Authorized:
			state = "authorized"
		}
		if err == nil && info.Authorized && !info.ExpiresAt.IsZero() {
			expires = info.ExpiresAt.Local().Format(time.DateTime)
			if info.ExpiresAt.Before(now) {
				expires += " (expired)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, printable(s.ServerID), state, expires, file)
	}
	return tw.Flush()
}
