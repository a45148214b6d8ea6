package importer

import (
	"fmt"
	"path"
	"strings"
)

// Client names an MCP client whose configuration file importer reads. The
// string is what `sigil-hub import --client` accepts.
type Client string

// The clients importer knows.
const (
	// ClaudeDesktop is claude_desktop_config.json: mcpServers.NAME.
	ClaudeDesktop Client = "claude"
	// Cursor is .cursor/mcp.json (project) and ~/.cursor/mcp.json (user):
	// mcpServers.NAME.
	Cursor Client = "cursor"
	// Kimi is ~/.kimi/mcp.json: mcpServers.NAME.
	Kimi Client = "kimi"
	// VSCode is .vscode/mcp.json and the user mcp.json (servers.NAME), or
	// the user settings.json (mcp.servers.NAME).
	VSCode Client = "vscode"
	// Codex is ~/.codex/config.toml: [mcp_servers.NAME].
	Codex Client = "codex"
)

// Clients returns every known client, in the order Locate lists them.
// Pure; safe for concurrent use.
func Clients() []Client { return []Client{ClaudeDesktop, Cursor, Kimi, VSCode, Codex} }

// ParseClient turns a --client value into a Client. It accepts the names
// above and a few spellings ("claude-desktop", "code", "vs-code").
// Pure; safe for concurrent use.
func ParseClient(s string) (Client, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "claude", "claude-desktop", "claude_desktop", "claudedesktop":
		return ClaudeDesktop, nil
	case "cursor":
		return Cursor, nil
	case "kimi":
		return Kimi, nil
	case "vscode", "vs-code", "code":
		return VSCode, nil
	case "codex":
		return Codex, nil
	}
	return "", fmt.Errorf("unknown client %q (want claude, cursor, kimi, vscode or codex)", s)
}

// Label is the client's display name; the empty Client (a file Detect
// could not attribute) is "mcpServers file". Pure; safe for concurrent use.
func (c Client) Label() string {
	switch c {
	case ClaudeDesktop:
		return "Claude Desktop"
	case Cursor:
		return "Cursor"
	case Kimi:
		return "Kimi"
	case VSCode:
		return "VS Code"
	case Codex:
		return "Codex"
	case "":
		return "mcpServers file"
	}
	return string(c)
}

// Layout is how a file holds its servers.
type Layout int

// The file layouts.
const (
	// LayoutMCPServers is a JSON object with "mcpServers": {NAME: {...}}
	// (Claude Desktop, Cursor, Kimi).
	LayoutMCPServers Layout = iota
	// LayoutVSCode is a JSON object with "servers": {NAME: {...}}
	// (.vscode/mcp.json, the user mcp.json).
	LayoutVSCode
	// LayoutVSCodeSettings is VS Code's settings.json: "mcp": {"servers": ...}.
	LayoutVSCodeSettings
	// LayoutCodex is Codex's config.toml: [mcp_servers.NAME].
	LayoutCodex
)

// Source is one client configuration file. It is a plain value.
type Source struct {
	// Client is the client the file belongs to.
	Client Client
	// Layout is how the file holds its servers.
	Layout Layout
	// Path is the file's path (OS-specific separators).
	Path string
	// Scope is "user" or "project" (a file in the current folder).
	Scope string
}

// String is "VS Code (project) .vscode/mcp.json". Pure.
func (s Source) String() string {
	return fmt.Sprintf("%s (%s) %s", s.Client.Label(), s.Scope, s.Path)
}

// LocateOptions say where to look. The zero value finds nothing useful:
// Getenv is required.
type LocateOptions struct {
	// GOOS is the operating system whose conventions apply ("darwin",
	// "windows", anything else is treated as Linux/Unix). Empty = "linux".
	GOOS string
	// Getenv returns the environment of the person running the import:
	// HOME, USERPROFILE, APPDATA, XDG_CONFIG_HOME and CODEX_HOME are read.
	// Nil = an empty environment.
	Getenv func(string) string
	// Cwd is the current folder, for project files (.cursor/mcp.json,
	// .vscode/mcp.json). Empty = project files are not listed.
	Cwd string
	// Client limits the result to one client. Empty = every client.
	Client Client
}

// Locate returns the files each client usually keeps its MCP servers in,
// for opts.GOOS; it does not check that they exist. Paths that cannot be
// formed (no home folder in the environment) are left out. Pure; safe for
// concurrent use if Getenv is.
func Locate(opts LocateOptions) []Source {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	goos := opts.GOOS
	if goos == "" {
		goos = "linux"
	}
	join := func(elem ...string) string { return joinOS(goos, elem...) }
	home := getenv("HOME")
	if goos == "windows" {
		home = firstNonEmpty(getenv("USERPROFILE"), getenv("HOME"))
	}
	// The per-user application data folder (os.UserConfigDir's answer).
	var appData string
	switch goos {
	case "darwin":
		if home != "" {
			appData = join(home, "Library", "Application Support")
		}
	case "windows":
		appData = getenv("APPDATA")
		if appData == "" && home != "" {
			appData = join(home, "AppData", "Roaming")
		}
	default:
		if x := getenv("XDG_CONFIG_HOME"); x != "" && strings.HasPrefix(x, "/") {
			appData = x
		} else if home != "" {
			appData = join(home, ".config")
		}
	}

	var out []Source
	add := func(c Client, l Layout, scope string, elem ...string) {
		if opts.Client != "" && opts.Client != c {
			return
		}
		if elem[0] == "" {
			return
		}
		out = append(out, Source{Client: c, Layout: l, Path: join(elem...), Scope: scope})
	}
	add(ClaudeDesktop, LayoutMCPServers, "user", appData, "Claude", "claude_desktop_config.json")
	add(Cursor, LayoutMCPServers, "project", opts.Cwd, ".cursor", "mcp.json")
	add(Cursor, LayoutMCPServers, "user", home, ".cursor", "mcp.json")
	add(Kimi, LayoutMCPServers, "user", home, ".kimi", "mcp.json")
	add(VSCode, LayoutVSCode, "project", opts.Cwd, ".vscode", "mcp.json")
	add(VSCode, LayoutVSCode, "user", appData, "Code", "User", "mcp.json")
	add(VSCode, LayoutVSCodeSettings, "user", appData, "Code", "User", "settings.json")
	if ch := getenv("CODEX_HOME"); ch != "" {
		add(Codex, LayoutCodex, "user", ch, "config.toml")
	} else {
		add(Codex, LayoutCodex, "user", home, ".codex", "config.toml")
	}
	return out
}

// Detect guesses the client and layout of a file named on the command
// line, from its name and content; forced (from --client) wins when set.
// Pure; safe for concurrent use.
func Detect(filePath string, data []byte, forced Client) Source {
	p := strings.ReplaceAll(filePath, `\`, "/")
	base := strings.ToLower(path.Base(p))
	dir := strings.ToLower(path.Base(path.Dir(p)))
	src := Source{Path: filePath, Scope: "file"}
	isTOML := strings.HasSuffix(base, ".toml")
	switch {
	case forced == Codex || (forced == "" && isTOML):
		src.Client, src.Layout = Codex, LayoutCodex
		return src
	case base == "settings.json" && (forced == "" || forced == VSCode):
		src.Client, src.Layout = VSCode, LayoutVSCodeSettings
		return src
	}
	src.Client = forced
	if src.Client == "" {
		switch {
		case base == "claude_desktop_config.json":
			src.Client = ClaudeDesktop
		case dir == ".cursor":
			src.Client = Cursor
		case dir == ".kimi":
			src.Client = Kimi
		case dir == ".vscode":
			src.Client = VSCode
		}
	}
	src.Layout = LayoutMCPServers
	if src.Client == VSCode || (src.Client == "" && jsonHasTopKey(data, "servers") && !jsonHasTopKey(data, "mcpServers")) {
		src.Client, src.Layout = VSCode, LayoutVSCode
	}
	return src // Client "" = a generic mcpServers file
}

// joinOS joins path elements with the separator of goos, so that every
// OS's locations can be computed (and tested) anywhere.
func joinOS(goos string, elem ...string) string {
	sep := "/"
	if goos == "windows" {
		sep = `\`
	}
	var b strings.Builder
	for i, e := range elem {
		if i > 0 {
			e = strings.TrimLeft(e, `/\`)
			if !strings.HasSuffix(b.String(), sep) {
				b.WriteString(sep)
			}
		}
		if i < len(elem)-1 {
			e = strings.TrimRight(e, `/\`)
		}
		b.WriteString(e)
	}
	return b.String()
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
