package config

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"

	"github.com/BurntSushi/toml"
)

// A personal overlay is a second TOML file, applied on top of a team's
// config file, where one person sets what differs on their machine: their
// own env and header references, the path of a command, servers they turn
// off (disabled = true) and private servers of their own. It cannot change
// how the team's calls are governed: the settings below stay the team
// file's, and a team server keeps its serverId even when the overlay
// changes its command.

// overlayTeamOnly are the top-level settings an overlay may not set.
var overlayTeamOnly = []string{"sign_url", "policy", "policy_hash", "verify", "audit", "pin", "pin_file"}

// overlayServerKeys are the keys an overlay may set on a team server.
var overlayServerKeys = []string{"env", "headers", "disabled", "command", "args", "cwd", "transport", "oauth", "server_name", "server_requests"}

// OverlaySummary describes, for a person reading logs or `check --print`,
// what an overlay may do.
const OverlaySummary = "an overlay may set env, headers, disabled, command, args, cwd, transport, oauth, server_name and server_requests " +
	"of a team server, add servers of its own, and set any top-level setting except " +
	"sign_url, policy, policy_hash, verify, audit, pin and pin_file"

// ParseLayered parses the team config file team (folder teamDir) with the
// personal overlay applied (see MergeOverlay; relative paths in the overlay
// are resolved against overlayDir). It validates the result like
// Parse; an overlay error says it is in the overlay. Safe for
// concurrent use if getenv is.
func ParseLayered(team []byte, teamDir string, overlay []byte, overlayDir string, getenv func(string) string) (Config, error) {
	merged, order, err := MergeOverlay(team, overlay, overlayDir)
	if err != nil {
		return Config{}, err
	}
	return parseConfig(merged, teamDir, getenv, order)
}

// MergeOverlay returns the team file with the overlay applied, as TOML, and
// the server names in order (the team's, then the overlay's own). Tables
// merge key by key (an overlay's env adds to and overrides the team's
// env); any other value replaces the team's. Relative cwd paths in the
// overlay are resolved against overlayDir, which is also the folder of the
// overlay's own stdio servers that set no cwd. When the overlay changes
// the command or args of a team server that derives its serverId, the
// serverId derived from the team file is kept. Every problem is reported;
// the error never contains a value from env or headers. Pure.
func MergeOverlay(team, overlay []byte, overlayDir string) ([]byte, []string, error) {
	if len(team) > cfgMaxFileSize || len(overlay) > cfgMaxFileSize {
		return nil, nil, fmt.Errorf("config file or overlay is larger than %d bytes", cfgMaxFileSize)
	}
	var tm, om map[string]any
	tmd, err := toml.Decode(string(team), &tm)
	if err != nil {
		return nil, nil, cfgSyntaxError(err)
	}
	omd, err := toml.Decode(string(overlay), &om)
	if err != nil {
		return nil, nil, fmt.Errorf("overlay: %w", cfgSyntaxError(err))
	}
	order := serverOrder(tmd)
	var errs []error
	bad := func(key []string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("overlay: %s: %s", cfgKeyPath(key...), fmt.Sprintf(format, args...)))
	}
	for _, k := range slices.Sorted(maps.Keys(om)) {
		switch {
		case k == "servers":
		case slices.Contains(overlayTeamOnly, k):
			bad([]string{k}, "is set by the team file only (%s)", OverlaySummary)
		default:
			tm[k] = om[k]
		}
	}
	if raw, ok := om["servers"]; ok {
		servers, ok := raw.(map[string]any)
		if !ok {
			bad([]string{"servers"}, "must be a table of [servers.NAME] tables")
			servers = nil
		}
		ts, _ := tm["servers"].(map[string]any)
		if ts == nil {
			ts = map[string]any{}
			tm["servers"] = ts
		}
		for _, name := range serverOrder(omd) {
			otab, ok := servers[name].(map[string]any)
			if !ok {
				bad([]string{"servers", name}, "must be a table")
				continue
			}
			if v, ok := otab["cwd"].(string); ok && v != "" && !filepath.IsAbs(v) {
				otab["cwd"] = filepath.Join(overlayDir, v)
			}
			ttab, isTeam := ts[name].(map[string]any)
			if !isTeam {
				if _, has := otab["cwd"]; !has && otab["command"] != nil {
					otab["cwd"] = overlayDir
				}
				ts[name] = otab
				order = append(order, name)
				continue
			}
			for _, k := range slices.Sorted(maps.Keys(otab)) {
				if !slices.Contains(overlayServerKeys, k) {
					bad([]string{"servers", name, k}, "is set by the team file only (%s)", OverlaySummary)
					delete(otab, k)
				}
			}
			_, newCmd := otab["command"]
			_, newArgs := otab["args"]
			if (newCmd || newArgs) && ttab["server_id"] == nil && ttab["url"] == nil {
				if cmd, ok := ttab["command"].(string); ok {
					args, _ := overlayStrings(ttab["args"])
					ttab["server_id"] = DeriveServerID(cmd, args)
				}
			}
			overlayMerge(ttab, otab)
		}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(tm); err != nil {
		return nil, nil, fmt.Errorf("overlay: %v", err)
	}
	return buf.Bytes(), order, nil
}

// serverOrder returns the [servers.NAME] names in file order.
func serverOrder(md toml.MetaData) []string {
	var out []string
	for _, k := range md.Keys() {
		if len(k) >= 2 && k[0] == "servers" && !slices.Contains(out, k[1]) {
			out = append(out, k[1])
		}
	}
	return out
}

// overlayMerge merges src into dst: tables key by key, other values
// replaced.
func overlayMerge(dst, src map[string]any) {
	for k, v := range src {
		d, dok := dst[k].(map[string]any)
		s, sok := v.(map[string]any)
		if dok && sok {
			overlayMerge(d, s)
			continue
		}
		dst[k] = v
	}
}

// overlayStrings converts a decoded TOML array of strings.
func overlayStrings(v any) ([]string, bool) {
	arr, ok := v.([]any)
	if !ok {
		return nil, v == nil
	}
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		s, ok := x.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}
