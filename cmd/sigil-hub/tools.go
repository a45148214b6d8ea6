package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// `sigil-hub tools`: the tools a client will see, each with its route and the
// intent action a call produces (README "Check your setup"). It starts the
// upstreams once, like `check`, and never calls a tool or the policy service.

const toolsUsage = `sigil-hub tools: list the exposed tools, where each one goes, and the intent action it produces.

Usage:
  sigil-hub tools [--config FILE] [--only NAME] [--json]
  sigil-hub tools [flags] -- COMMAND [ARGS...]
  sigil-hub tools [flags] --config sigil.config.json -- COMMAND [ARGS...]

Columns: the exposed name, the upstream and its serverId, the upstream's own
tool name, and the intent action Sigil decides on (mcp.<serverId>.<tool>, or
the typed action an extractor gives: web_fetch, http, file_write, bash...).
Exit status 1 when an upstream did not start (its tools are missing).

Flags:
`

// jsonTool is one tool in `tools --json`.
type jsonTool struct {
	Name       string            `json:"name"`
	Upstream   string            `json:"upstream"`
	ServerID   string            `json:"server_id"`
	Tool       string            `json:"tool"`
	Action     string            `json:"action"`
	ActionNote string            `json:"action_note,omitempty"`
	Extract    map[string]string `json:"extract,omitempty"`
}

// toolsReport is `tools --json`'s output.
type toolsReport struct {
	Tools     []jsonTool     `json:"tools"`
	Upstreams []jsonUpstream `json:"upstreams"`
	Warnings  []jsonWarning  `json:"warnings"`
}

func runTools(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	getenv := envLookup(environ)
	f, command, err := parseInspectFlags("tools", toolsUsage, false, args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	l, err := loadConfigFrom(f.cli, "sigil-hub tools", command, environ, getenv)
	if err != nil {
		return err
	}
	cfg, single := l.cfg, l.single
	logger, err := inspectLogger(f, stderr)
	if err != nil {
		return err
	}
	inv, err := takeInventory(ctx, cfg, single, environ, logger)
	if err != nil {
		return err
	}
	var down []string
	for _, u := range inv.Upstreams {
		if !u.Ready {
			down = append(down, u.Name)
		}
	}

	if f.json {
		rep := toolsReport{Tools: []jsonTool{}, Upstreams: jsonUpstreams(inv), Warnings: jsonWarnings(inv.Warnings)}
		for _, t := range inv.Tools {
			rep.Tools = append(rep.Tools, jsonTool{Name: t.Exposed, Upstream: t.Upstream, ServerID: t.ServerID, Tool: t.Name,
				Action: t.Action, ActionNote: t.ActionNote, Extract: t.Extract})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		writeTools(stdout, inv)
	}
	if len(down) > 0 {
		return fmt.Errorf("tools: %s did not start, so its tools are missing (run `sigil-hub check` for the reason)", strings.Join(down, ", "))
	}
	return nil
}

// writeTools prints the tools table; notes on actions follow it.
func writeTools(w io.Writer, inv inventory) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EXPOSED\tUPSTREAM\tSERVER ID\tTOOL\tACTION")
	var notes []string
	for _, t := range inv.Tools {
		action := t.Action
		if action == "" {
			action = "(denied)"
		}
		if t.ActionNote != "" {
			notes = append(notes, fmt.Sprintf("  %s: %s", printable(t.Exposed), printable(t.ActionNote)))
			action += " *"
		}
		if len(t.Extract) > 0 {
			var fs []string
			for _, k := range slices.Sorted(maps.Keys(t.Extract)) {
				fs = append(fs, k+"="+t.Extract[k])
			}
			action += " (" + strings.Join(fs, ", ") + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", printable(t.Exposed), t.Upstream, printable(t.ServerID), printable(t.Name), printable(action))
	}
	tw.Flush()
	if len(notes) > 0 {
		fmt.Fprintln(w, "\n* "+"action notes:")
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
	fmt.Fprintf(w, "\n%d tool(s) from %d upstream(s)\n", len(inv.Tools), len(inv.Upstreams))
	for _, u := range inv.Upstreams {
		if !u.Ready {
			fmt.Fprintf(w, "  %s is %s: its tools are missing\n", u.Name, u.State)
		}
	}
}
