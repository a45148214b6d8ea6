package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/config"
)

// loadConfig builds the hub config from the file and the CLI (flag > env >
// file > defaults). It reports whether names stay unchanged (single-wrap).
func loadConfig(f cliFlags, command, environ []string, getenv func(string) string) (config.Config, bool, error) {
	l, err := loadConfigFrom(f, "sigil-hub", command, environ, getenv)
	return l.cfg, l.single, err
}

// loadConfigNoted is loadConfig that also says which config file was used
// when a hub TOML and a sigil.config.json could both apply (README "Coming
// from @sigilcore/mcp-proxy"); "" when there is nothing to say. The caller
// logs it.
func loadConfigNoted(f cliFlags, command, environ []string, getenv func(string) string) (config.Config, bool, string, error) {
	l, err := loadConfigFrom(f, "sigil-hub", command, environ, getenv)
	return l.cfg, l.single, l.note, err
}

// loaded is what loadConfigFrom read.
type loaded struct {
	cfg    config.Config
	single bool   // names stay unchanged (single-wrap)
	note   string // which file was used, when two could apply; "" = nothing to say
	// seedPath is the @sigilcore/mcp-proxy file the wrapped server's
	// settings came from ("" = none).
	seedPath string
	// shown is how `check --print` shows a wrapped remote server's header
	// values, keyed NAME.headers.HEADER like config.MaskedValues: the
	// file's upstream.headers as written (references only) and
	// ${SIGIL_UPSTREAM_AUTH} for the Authorization the environment set.
	shown map[string]string
}

// loadConfigFrom is the one way every command reads its config: the hub
// TOML, or the sigil.config.json of a wrapped server, with the CLI on top.
// invocation is how errors spell the command that asks ("sigil-hub",
// "sigil-hub check", ...).
func loadConfigFrom(f cliFlags, invocation string, command, environ []string, getenv func(string) string) (loaded, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return loaded{}, err
	}
	wrapping := len(command) > 0 || f.remote != ""
	if wrapping && f.set["config"] && !isSeedPath(f.config) {
		return loaded{}, errors.New("--config FILE.toml and a wrapped server (-- COMMAND or --remote) exclude each other: use --config FILE --only NAME to serve one server from a file " +
			"(a @sigilcore/mcp-proxy " + config.SeedFileName + " may be given with --config FILE.json)")
	}
	path := configFile(f, command, getenv)
	seedPath := seedFile(f, command, getenv)
	if seedPath != "" && !wrapping {
		return loaded{}, fmt.Errorf("%s is a @sigilcore/mcp-proxy config (JSON): it configures one wrapped server, so give that server too: "+
			"`%s --config %s -- COMMAND [ARGS...]` or `%s --config %s --remote URL` (a hub file with several servers is TOML: see `sigil-hub init`)",
			seedPath, invocation, seedPath, invocation, seedPath)
	}
	if path == "" && !wrapping {
		hint := ""
		if fileExists(config.SeedFileName) {
			hint = " (./" + config.SeedFileName + " applies only to a wrapped server)"
		}
		return loaded{}, fmt.Errorf("nothing to serve: run `%s -- COMMAND [ARGS...]` to wrap one MCP server, "+
			"`%s --remote URL`, or `%s --config FILE` (create one with `sigil-hub --init`)%s", invocation, invocation, invocation, hint)
	}

	note := ""
	var shown map[string]string
	var cfg config.Config
	if path != "" {
		if cfg, err = readConfigFiles(path, overlayFile(f, command, getenv), getenv); err != nil {
			return loaded{}, err
		}
		if fileExists(config.SeedFileName) && !sameFile(path, config.SeedFileName) {
			note = "config: using " + path + "; ./" + config.SeedFileName + " is not read: it applies only when wrapping one server (-- COMMAND or --remote)"
		}
	} else {
		cfg, err = config.Parse(strings.NewReader(""), cwd, getenv)
		if err != nil {
			return loaded{}, err
		}
	}
	var seed config.Seed
	if seedPath != "" {
		if seed, err = readSeedFile(seedPath, getenv); err != nil {
			return loaded{}, err
		}
		note = "config: using " + seedPath + " (@sigilcore/mcp-proxy format) for the wrapped server"
		if toml := pick(getenv("SIGIL_HUB_CONFIG"), existing("sigil-hub.toml")); toml != "" && !isSeedPath(toml) {
			note += "; " + toml + " is not read when wrapping one server"
		}
		// The file's settings sit under the environment's and the flags',
		// which the overrides below apply (flag > environment > file).
		if seed.SignURL != "" {
			cfg.SignURL = seed.SignURL
		}
		if seed.LogLevel != "" {
			cfg.LogLevel = seed.LogLevel
		}
		if seed.PendingTimeout > 0 {
			cfg.PendingTimeout = seed.PendingTimeout
		}
		if len(command) > 0 && len(seed.Headers) > 0 {
			return loaded{}, fmt.Errorf("config %s: upstream.headers applies only to a remote server (--remote URL), not to -- %s", seedPath, command[0])
		}
	}

	// Global overrides: flag > env > file. The Sign URL is checked the one
	// way the file's sign_url is (authz.CheckSignURL): the API key goes
	// there.
	for _, o := range []struct{ from, v string }{{"--sign-url", f.signURL}, {"SIGIL_SIGN_URL", getenv("SIGIL_SIGN_URL")}} {
		if o.v == "" {
			continue
		}
		u, err := authz.CheckSignURL(o.v)
		if err != nil {
			return loaded{}, fmt.Errorf("%s %v", o.from, err)
		}
		cfg.SignURL = u
		break
	}
	if v := pick(f.logLevel, getenv("SIGIL_LOG_LEVEL")); v != "" {
		cfg.LogLevel = v
	}
	if v := pick(f.logFormat, getenv("SIGIL_LOG_FORMAT")); v != "" {
		if v != "text" && v != "json" {
			return loaded{}, fmt.Errorf("--log-format %q: want text or json", v)
		}
		cfg.LogFormat = v
	}
	if f.policy != "" {
		abs, err := filepath.Abs(f.policy)
		if err != nil {
			return loaded{}, err
		}
		cfg.Policy = abs
	}
	if f.callTimeout > 0 {
		cfg.CallTimeout = time.Duration(f.callTimeout) * time.Millisecond
	}
	if f.audit != "" {
		abs, err := filepath.Abs(f.audit)
		if err != nil {
			return loaded{}, err
		}
		cfg.Audit = abs
	}
	if f.pin != "" {
		switch f.pin {
		case "off", "warn", "strict":
			cfg.Pin = f.pin
		default:
			return loaded{}, fmt.Errorf("--pin %q: want warn, strict or off", f.pin)
		}
	}
	if f.pinFile != "" {
		abs, err := filepath.Abs(f.pinFile)
		if err != nil {
			return loaded{}, err
		}
		cfg.PinFile = abs
	}
	if cfg.PinFile == "" && cfg.Pin != "off" {
		// Without a config folder the pins live in memory only.
		if dir, err := signerConfigDir(getenv); err == nil {
			cfg.PinFile = filepath.Join(dir, "pins.json")
		}
	}
	if f.pendingTimeout > 0 {
		cfg.PendingTimeout = time.Duration(f.pendingTimeout) * time.Millisecond
	} else if v := getenv("SIGIL_PENDING_TIMEOUT"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			return loaded{}, fmt.Errorf("SIGIL_PENDING_TIMEOUT=%q: want a positive number of milliseconds", v)
		}
		cfg.PendingTimeout = time.Duration(ms) * time.Millisecond
	}

	single := false
	switch {
	case len(command) > 0:
		id := pick(f.serverID, seed.ServerID, config.DeriveServerID(command[0], command[1:]))
		cfg.Servers = []config.Server{{
			Name: namespaceFor(id), Command: command[0], Args: command[1:], Cwd: cwd,
			Env:      wrappedEnv(environ),
			ServerID: id, ServerName: pick(f.serverName, seed.ServerName, id), Attestation: true, ServerRequests: true,
			Extractors: seed.Extractors,
		}}
		single = true
	case f.remote != "":
		derived, err := config.DeriveServerIDFromURL(f.remote)
		if err != nil {
			return loaded{}, fmt.Errorf("--remote: %w", err)
		}
		id := pick(f.serverID, seed.ServerID, derived)
		s := config.Server{Name: namespaceFor(id), URL: f.remote, Transport: "auto", ServerID: id,
			ServerName: pick(f.serverName, seed.ServerName, id), Attestation: true, ServerRequests: true, Headers: map[string]string{},
			Extractors: seed.Extractors}
		maps.Copy(s.Headers, seed.Headers)
		shown = map[string]string{}
		for k, v := range seed.HeaderTemplates {
			shown[s.Name+".headers."+k] = v // as written: references only
		}
		if auth := getenv("SIGIL_UPSTREAM_AUTH"); auth != "" {
			// The environment beats the file: one Authorization header.
			isAuth := func(k, _ string) bool {
				return strings.EqualFold(strings.TrimPrefix(k, s.Name+".headers."), "Authorization")
			}
			maps.DeleteFunc(s.Headers, isAuth)
			maps.DeleteFunc(shown, isAuth)
			s.Headers["Authorization"] = auth
			shown[s.Name+".headers.Authorization"] = "${SIGIL_UPSTREAM_AUTH}"
		}
		cfg.Servers = []config.Server{s}
		single = true
	case f.only != "":
		var keep []config.Server
		for _, s := range cfg.Servers {
			if s.Name == f.only {
				s.Disabled = false
				if f.serverID != "" {
					s.ServerID = f.serverID
				}
				if f.serverName != "" {
					s.ServerName = f.serverName
				}
				keep = append(keep, s)
			}
		}
		if len(keep) == 0 {
			var names []string
			for _, s := range cfg.Servers {
				names = append(names, s.Name)
			}
			return loaded{}, fmt.Errorf("--only %q: no such server in %s (servers: %s)", f.only, path, strings.Join(names, ", "))
		}
		cfg.Servers = keep
		single = true
	default:
		if f.serverID != "" || f.serverName != "" {
			return loaded{}, errors.New("--server-id and --server-name apply to one wrapped server: set server_id per server in the config file instead")
		}
	}
	return loaded{cfg: cfg, single: single, note: note, seedPath: seedPath, shown: shown}, nil
}

// configFile returns the hub TOML file loadConfig reads for f and command
// ("" when there is none: a wrapped server, or a .json file, which
// seedFile returns).
func configFile(f cliFlags, command []string, getenv func(string) string) string {
	if len(command) > 0 || f.remote != "" {
		return ""
	}
	if f.config != "" {
		if isSeedPath(f.config) {
			return ""
		}
		return f.config
	}
	if p := getenv("SIGIL_HUB_CONFIG"); p != "" {
		if isSeedPath(p) {
			return ""
		}
		return p
	}
	if _, err := os.Stat("sigil-hub.toml"); err == nil {
		return "sigil-hub.toml"
	}
	return ""
}

// seedFile returns the @sigilcore/mcp-proxy file (sigil.config.json
// format) loadConfig reads: --config FILE.json, else SIGIL_HUB_CONFIG
// naming a .json file, else, when wrapping one server,
// ./sigil.config.json if it exists (where the proxy finds it). "" when
// there is none.
func seedFile(f cliFlags, command []string, getenv func(string) string) string {
	switch {
	case f.config != "":
		if isSeedPath(f.config) {
			return f.config
		}
		return ""
	case isSeedPath(getenv("SIGIL_HUB_CONFIG")):
		return getenv("SIGIL_HUB_CONFIG")
	case (len(command) > 0 || f.remote != "") && fileExists(config.SeedFileName):
		return config.SeedFileName
	}
	return ""
}

// readSeedFile reads and checks the @sigilcore/mcp-proxy file at path
// (config.ParseSeed): the one reader of that format for every command.
func readSeedFile(path string, getenv func(string) string) (config.Seed, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return config.Seed{}, fmt.Errorf("open config: %w", err)
	}
	seed, err := config.ParseSeed(data, getenv)
	if err != nil {
		return config.Seed{}, fmt.Errorf("config %s (@sigilcore/mcp-proxy format): %w", path, err)
	}
	return seed, nil
}

// isSeedPath reports whether a config path names a JSON file: the
// @sigilcore/mcp-proxy format (a hub file is TOML).
func isSeedPath(p string) bool { return strings.EqualFold(filepath.Ext(p), ".json") }

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// existing returns p if it exists, else "".
func existing(p string) string {
	if fileExists(p) {
		return p
	}
	return ""
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// overlay is the personal overlay file applied on top of the config file.
type overlay struct {
	path     string // "" when there is none
	required bool   // named with --overlay: it must exist
}

// overlayFile returns the overlay for f: --overlay FILE, or else
// <user config dir>/sigil-hub/local.toml, which need not exist (it applies
// from when it does). None with --overlay none or for a wrapped server.
func overlayFile(f cliFlags, command []string, getenv func(string) string) overlay {
	if len(command) > 0 || f.remote != "" || f.overlay == "none" {
		return overlay{}
	}
	if f.overlay != "" {
		return overlay{path: f.overlay, required: true}
	}
	dir, err := signerConfigDir(getenv)
	if err != nil {
		return overlay{}
	}
	return overlay{path: filepath.Join(dir, "local.toml")}
}

// readConfigFiles parses the config file at path with the overlay applied
// when overlay is set and exists (an explicit --overlay must exist).
func readConfigFiles(path string, o overlay, getenv func(string) string) (config.Config, error) {
	team, err := os.ReadFile(path)
	if err != nil {
		return config.Config{}, fmt.Errorf("open config: %w", err)
	}
	abs, _ := filepath.Abs(path)
	ov, ovPath, err := o.read()
	if err != nil {
		return config.Config{}, err
	}
	if ov == nil {
		cfg, err := config.Parse(strings.NewReader(string(team)), filepath.Dir(abs), getenv)
		if err != nil {
			return config.Config{}, fmt.Errorf("config %s: %w", path, err)
		}
		return cfg, nil
	}
	cfg, err := config.ParseLayered(team, filepath.Dir(abs), ov, filepath.Dir(ovPath), getenv)
	if err != nil {
		return config.Config{}, fmt.Errorf("config %s with overlay %s: %w", path, o.path, err)
	}
	return cfg, nil
}

// read reads the overlay file: nil if there is none.
func (o overlay) read() (src []byte, abs string, err error) {
	if o.path == "" {
		return nil, "", nil
	}
	src, err = os.ReadFile(o.path)
	switch {
	case errors.Is(err, os.ErrNotExist) && !o.required:
		return nil, "", nil
	case err != nil:
		return nil, "", fmt.Errorf("overlay: %w (--overlay none runs without one)", err)
	}
	abs, _ = filepath.Abs(o.path)
	return src, abs, nil
}
