package importer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// HubEntry is the one client entry that replaces the imported ones:
// `sigil-hub --config PATH` with an env. A plain value.
type HubEntry struct {
	// Name is the entry's key in the client file. Empty = "sigil-hub".
	Name string
	// Command is the executable. Empty = "sigil-hub".
	Command string
	// ConfigPath is the hub file, passed as --config.
	ConfigPath string
	// Env is the entry's env, in order. Values are written as given:
	// placeholders when printed, the client file's own values in Apply.
	Env []KV
	// EnvVars (Codex only) are variables Codex forwards from its own
	// environment (env_vars).
	EnvVars []string
	// Bypass adds --unsafe-bypass before --config: kept from wrappers that
	// ran with it (Result.Bypass), since it is a command-line flag only.
	Bypass bool
}

// args are the entry's arguments.
func (h HubEntry) args() []string {
	if h.Bypass {
		return []string{"--unsafe-bypass", "--config", h.ConfigPath}
	}
	return []string{"--config", h.ConfigPath}
}

func (h HubEntry) name() string    { return pick(h.Name, "sigil-hub") }
func (h HubEntry) command() string { return pick(h.Command, "sigil-hub") }

// jsonValue renders the entry's object for layout l; every line after the
// first starts with indent, and unit is one level of indentation.
func (h HubEntry) jsonValue(l Layout, indent, unit string) string {
	q := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b)
	}
	in := indent + unit
	var b strings.Builder
	b.WriteString("{\n")
	if l == LayoutVSCode || l == LayoutVSCodeSettings {
		b.WriteString(in + `"type": "stdio",` + "\n")
	}
	b.WriteString(in + `"command": ` + q(h.command()) + ",\n")
	qa := make([]string, 0, 3)
	for _, a := range h.args() {
		qa = append(qa, q(a))
	}
	b.WriteString(in + `"args": [` + strings.Join(qa, ", ") + "]")
	if len(h.Env) > 0 {
		b.WriteString(",\n" + in + `"env": {`)
		for i, kv := range h.Env {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("\n" + in + unit + q(kv.Key) + ": " + q(kv.Value))
		}
		b.WriteString("\n" + in + "}")
	}
	b.WriteString("\n" + indent + "}")
	return b.String()
}

// codexTable renders the entry as a Codex [mcp_servers.NAME] table.
func (h HubEntry) codexTable() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[mcp_servers.%s]\n", tomlKey(h.name()))
	fmt.Fprintf(&b, "command = %s\n", tomlString(h.command()))
	fmt.Fprintf(&b, "args = %s\n", tomlArray(h.args()))
	if len(h.Env) > 0 {
		fmt.Fprintf(&b, "env = %s\n", tomlInline(h.Env))
	}
	if len(h.EnvVars) > 0 {
		fmt.Fprintf(&b, "env_vars = %s\n", tomlArray(h.EnvVars))
	}
	return b.String()
}

// Snippet is the entry as a person would paste it into a file of layout l:
// a whole JSON document ({"mcpServers": {...}}) or a Codex TOML table.
// Pure; safe for concurrent use.
func (h HubEntry) Snippet(l Layout) string {
	name, _ := json.Marshal(h.name())
	switch l {
	case LayoutCodex:
		return h.codexTable()
	case LayoutVSCode:
		return "{\n  \"servers\": {\n    " + string(name) + ": " + h.jsonValue(l, "    ", "  ") + "\n  }\n}\n"
	case LayoutVSCodeSettings:
		return "{\n  \"mcp\": {\n    \"servers\": {\n      " + string(name) + ": " + h.jsonValue(l, "      ", "  ") + "\n    }\n  }\n}\n"
	}
	return "{\n  \"mcpServers\": {\n    " + string(name) + ": " + h.jsonValue(l, "    ", "  ") + "\n  }\n}\n"
}

// RewriteJSON returns data with the entries named in remove, and any entry
// named like the hub entry, taken out of the servers object of layout l and
// the hub entry put in their place (last). Everything outside that object
// is kept byte for byte (comments included), and so are the entries that
// stay; comments between entries inside the object are lost. The result
// is checked: decoded, it must equal the original minus the removed
// entries plus the hub entry. Pure; safe for concurrent use.
func RewriteJSON(data []byte, l Layout, remove []string, h HubEntry) ([]byte, error) {
	if l == LayoutCodex {
		return nil, errors.New("not a JSON layout")
	}
	clean := cleanJSONC(data)
	cont, ms, ok, err := locateContainer(clean, l)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no %q object to rewrite", strings.Join(containerPath(l), "."))
	}
	indent := lineIndent(data, cont.KeyStart)
	unit := "  "
	memberIndent := indent + unit
	if len(ms) > 0 {
		if mi := lineIndent(data, ms[0].KeyStart); len(mi) > len(indent) && onOwnLine(data, ms[0].KeyStart) {
			memberIndent, unit = mi, mi[len(indent):]
		}
	}
	var b strings.Builder
	b.WriteString("{")
	for _, m := range ms {
		if slices.Contains(remove, m.Key) || m.Key == h.name() {
			continue
		}
		b.WriteString("\n" + memberIndent + string(data[m.KeyStart:m.ValEnd]) + ",")
	}
	name, _ := json.Marshal(h.name())
	b.WriteString("\n" + memberIndent + string(name) + ": " + h.jsonValue(l, memberIndent, unit))
	b.WriteString("\n" + indent + "}")
	out := slices.Concat(data[:cont.ValStart], []byte(b.String()), data[cont.ValEnd:])

	// Check: the same document, minus the removed entries, plus the hub.
	var before, after map[string]any
	if err := json.Unmarshal(clean, &before); err != nil {
		return nil, jsonError(clean, err)
	}
	if err := json.Unmarshal(cleanJSONC(out), &after); err != nil {
		return nil, fmt.Errorf("internal error: the rewritten file is not valid JSON: %v", err)
	}
	bc, ac := dig(before, containerPath(l)), dig(after, containerPath(l))
	if bc == nil || ac == nil {
		return nil, errors.New("internal error: the servers object was lost in the rewrite")
	}
	for _, k := range remove {
		delete(bc, k)
	}
	delete(bc, h.name())
	delete(ac, h.name())
	if !reflect.DeepEqual(before, after) {
		return nil, errors.New("internal error: the rewrite changed more than the imported entries")
	}
	return out, nil
}

// dig returns the object at path p.
func dig(m map[string]any, p []string) map[string]any {
	for _, k := range p {
		next, ok := m[k].(map[string]any)
		if !ok {
			return nil
		}
		m = next
	}
	return m
}

// lineIndent returns the spaces and tabs that start the line holding off.
func lineIndent(data []byte, off int) string {
	start := off
	for start > 0 && data[start-1] != '\n' {
		start--
	}
	end := start
	for end < len(data) && (data[end] == ' ' || data[end] == '\t') {
		end++
	}
	return string(data[start:end])
}

// onOwnLine reports whether only indentation precedes off on its line.
func onOwnLine(data []byte, off int) bool {
	return len(lineIndent(data, off)) == off-lineStart(data, off)
}

func lineStart(data []byte, off int) int {
	for off > 0 && data[off-1] != '\n' {
		off--
	}
	return off
}

// RewriteCodex returns Codex's config.toml with the [mcp_servers.NAME]
// tables (and their sub-tables) named in remove, and any named like the hub
// entry, taken out and the hub entry appended as a table. Everything else
// is kept line for line. Servers written other than as their own table
// (inline or dotted keys) cannot be taken out: that is an error. The result
// is checked by decoding it. Pure; safe for concurrent use.
func RewriteCodex(data []byte, remove []string, h HubEntry) ([]byte, error) {
	var before map[string]any
	if _, err := toml.Decode(string(data), &before); err != nil {
		return nil, tomlError(err)
	}
	drop := slices.Concat(remove, []string{h.name()})
	lines := strings.SplitAfter(string(data), "\n")
	var out strings.Builder
	skipping := false
	for _, ln := range lines {
		if key, ok := tableHeader(ln); ok {
			skipping = len(key) >= 2 && key[0] == "mcp_servers" && slices.Contains(drop, key[1])
		}
		if !skipping {
			out.WriteString(ln)
		}
	}
	text := strings.TrimRight(out.String(), "\n")
	if text != "" {
		text += "\n\n"
	}
	text += h.codexTable()

	var after map[string]any
	if _, err := toml.Decode(text, &after); err != nil {
		return nil, fmt.Errorf("internal error: the rewritten file is not valid TOML: %v", typeOnly(err))
	}
	servers, _ := after["mcp_servers"].(map[string]any)
	for _, k := range remove {
		if _, still := servers[k]; still && k != h.name() {
			return nil, fmt.Errorf("mcp_servers.%s is not written as its own [mcp_servers.%s] table: edit the file by hand", tomlKey(k), tomlKey(k))
		}
	}
	if bs, ok := before["mcp_servers"].(map[string]any); ok {
		for _, k := range drop {
			delete(bs, k)
		}
	}
	delete(servers, h.name())
	if len(servers) == 0 {
		delete(after, "mcp_servers")
		if bs, ok := before["mcp_servers"].(map[string]any); ok && len(bs) == 0 {
			delete(before, "mcp_servers")
		}
	}
	if !reflect.DeepEqual(before, after) {
		return nil, errors.New("cannot rewrite the file safely (a multi-line string or an unusual layout): edit it by hand")
	}
	return []byte(text), nil
}

// tableHeader parses a "[a.b.c]" line (not "[[...]]") into its key.
func tableHeader(line string) (toml.Key, bool) {
	t := strings.TrimSpace(line)
	if !strings.HasPrefix(t, "[") || strings.HasPrefix(t, "[[") {
		return nil, false
	}
	md, err := toml.Decode(t+"\n", &map[string]any{})
	if err != nil {
		return nil, false
	}
	keys := md.Keys()
	if len(keys) == 0 {
		return nil, false
	}
	return keys[0], true
}

// Apply replaces the client file at path with updated, after checking it
// still holds orig (it was read earlier), and after writing orig to a
// backup next to it, "<path>.sigil-hub-backup-<UTC time>", with the same
// permissions. The replacement is atomic (a temporary file in the same
// folder, renamed over the original) and keeps the file's mode. It returns
// the backup's path. Not safe for concurrent use on one path.
func Apply(path string, orig, updated []byte, now time.Time) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	cur, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if string(cur) != string(orig) {
		return "", fmt.Errorf("%s changed since it was read: run the import again", path)
	}
	mode := st.Mode().Perm()
	backup := path + ".sigil-hub-backup-" + now.UTC().Format("20060102T150405Z")
	bf, err := os.OpenFile(backup, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	_, werr := bf.Write(orig)
	if werr == nil {
		werr = bf.Sync()
	}
	if cerr := bf.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(backup)
		return "", fmt.Errorf("backup: %w", werr)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".sigil-hub-*")
	if err != nil {
		return backup, err
	}
	_, werr = tmp.Write(updated)
	if werr == nil {
		werr = tmp.Chmod(mode)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return backup, werr
	}
	return backup, nil
}
