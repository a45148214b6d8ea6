package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/sigilcore/sigil-hub/config"
)

// `sigil-hub init` (or --init): the starter hub file. In a folder holding a
// @sigilcore/mcp-proxy sigil.config.json it starts from that file (README
// "Coming from @sigilcore/mcp-proxy").

// writeStarter writes ./sigil-hub.toml, never over an existing one: the
// commented starter (config.Starter), or the hub file that starts from
// ./sigil.config.json (seedStarter).
func writeStarter(stderr io.Writer) error {
	const name = "sigil-hub.toml"
	if _, err := os.Stat(name); err == nil {
		return fmt.Errorf("%s already exists: not overwritten", name)
	}
	body := config.Starter()
	msg := fmt.Sprintf("wrote %s: edit its [servers.*] tables, then run `sigil-hub --config %s`", name, name)
	if fileExists(config.SeedFileName) {
		// The file's headers are written as references and never expanded:
		// their variables need not be set to write the hub file.
		seed, err := readSeedFile(config.SeedFileName, func(string) string { return "set" })
		if err != nil {
			return fmt.Errorf("%w (nothing written; fix it, or run `sigil-hub init` in another folder for the plain starter)", err)
		}
		var table string
		body, table = seedStarter(seed)
		msg = fmt.Sprintf("wrote %s from ./%s (@sigilcore/mcp-proxy format): its settings are at the top and in [servers.%s]. "+
			"%s does not name the server itself (the client entry did, after -- or with --remote): set command or url in [servers.%s], "+
			"then run `sigil-hub --config %s` (`sigil-hub import` moves client entries together with their %s in one step)",
			name, config.SeedFileName, table, config.SeedFileName, table, name, config.SeedFileName)
	}
	if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(stderr, msg)
	return nil
}

// seedStarter is the hub file that carries a sigil.config.json: signUrl,
// logLevel and pendingTimeout at the top; serverId, serverName,
// upstream.headers (as written: references only) and extractors in the
// server's table, whose command or url the person sets (the seed format
// has neither). It returns the file and the table's name.
func seedStarter(s config.Seed) (body, table string) {
	table = "server"
	if s.ServerID != "" {
		table = namespaceFor(s.ServerID)
	}
	var b strings.Builder
	b.WriteString("# sigil-hub configuration, started from ./" + config.SeedFileName + " (@sigilcore/mcp-proxy).\n")
	b.WriteString(`#
# Every tools/call is authorized by Sigil Sign before it reaches an upstream.
# The API key is read only from the environment: export SIGIL_API_KEY=...
# It is never written in this file.

`)
	setting := func(key, value, comment string) {
		if value == "" {
			fmt.Fprintf(&b, "# %s\n", comment)
			return
		}
		fmt.Fprintf(&b, "%s = %s\n", key, value)
	}
	setting("sign_url", quotedIf(s.SignURL), `sign_url = "https://sign.sigilcore.com"`)
	setting("log_level", quotedIf(s.LogLevel), `log_level = "info"            # debug | info | warn | error`)
	pending := ""
	if s.PendingTimeout > 0 {
		pending = fmt.Sprint(s.PendingTimeout.Milliseconds())
	}
	setting("pending_timeout", pending, "pending_timeout = 30000       # ms a call held for approval may wait")
	b.WriteString(`# log_format = "text"           # text | json (one object per line, with a stable "event")
# verify = "warn"               # off | warn | enforce (attestation check)

# The server ` + config.SeedFileName + ` configures. That file does not name the server
# itself: the client entry did (after --, or with --remote URL). Set command
# (and args) for a stdio server, or url for a remote one; until then the hub
# refuses this file, naming this table. The table name is the namespace:
# its tool "read_file" is exposed as "` + table + `__read_file".
`)
	fmt.Fprintf(&b, "[servers.%s]\n", tomlKey(table))
	if len(s.HeaderTemplates) == 0 {
		b.WriteString("# command = \"npx\"\n# args = [\"-y\", \"@modelcontextprotocol/server-filesystem\", \".\"]\n")
	}
	b.WriteString("# url = \"https://mcp.example.com/mcp\"\n")
	if s.ServerID != "" {
		fmt.Fprintf(&b, "server_id = %s\n", tomlString(s.ServerID))
	}
	if s.ServerName != "" {
		fmt.Fprintf(&b, "server_name = %s\n", tomlString(s.ServerName))
	}
	if len(s.HeaderTemplates) > 0 {
		fmt.Fprintf(&b, "headers = %s\n", tomlInline(slices.Sorted(maps.Keys(s.HeaderTemplates)), func(k string) string { return s.HeaderTemplates[k] }))
	}
	for _, tool := range slices.Sorted(maps.Keys(s.Extractors)) {
		x := s.Extractors[tool]
		fmt.Fprintf(&b, "\n[servers.%s.extractors.%s]\n", tomlKey(table), tomlKey(tool))
		if x.Action != "" {
			fmt.Fprintf(&b, "action = %s\n", tomlString(x.Action))
		}
		for _, field := range slices.Sorted(maps.Keys(x.Fields)) {
			fmt.Fprintf(&b, "%s = %s\n", field, tomlString(x.Fields[field]))
		}
	}
	return b.String(), table
}

// quotedIf is v as a TOML string, or "" when v is empty.
func quotedIf(v string) string {
	if v == "" {
		return ""
	}
	return tomlString(v)
}
