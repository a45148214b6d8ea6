package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"text/tabwriter"

	"github.com/sigilcore/sigil-hub/pins"
)

// `sigil-hub pins`: review the tool pin store (README "Tool pinning (rug-pull
// defence)"). A running hub records every changed definition's hash as
// "pending", so accepting needs no upstream: it re-pins to the pending hash,
// and a running hub re-reads the file on its next tools/list or tools/call.

const pinsUsage = `sigil-hub pins: review tool definitions pinned by the hub (the rug-pull defence).

Usage:
  sigil-hub pins list [--config FILE] [--pin-file FILE]
  sigil-hub pins accept [flags] [SERVER_ID [TOOL]]   re-pin changed tools to the definition the hub saw last
  sigil-hub pins reset [flags] [SERVER_ID]           forget pins; they are recorded again on next sight

The hub records a SHA-256 of each tool's definition per serverId the first
time it lists it. A definition that changed later is "changed" here: with
pin = "strict" it stays hidden until accepted. A running hub picks up an
accept or reset without a restart.

Flags:
`

func runPins(_ context.Context, args, environ []string, stdout, stderr io.Writer) error {
	getenv := envLookup(environ)
	fs := flag.NewFlagSet("sigil-hub pins", flag.ContinueOnError)
	configPath := fs.String("config", "", "hub config file whose pin_file to use (env SIGIL_HUB_CONFIG; default ./sigil-hub.toml if present); "+
		"a .json file is a @sigilcore/mcp-proxy sigil.config.json, which sets no pin file: the default store")
	pinFile := fs.String("pin-file", "", "the pin store (default: the config's pin_file, else <user config dir>/sigil-hub/pins.json)")
	verb, help, err := parseVerb(fs, pinsUsage, stderr, args)
	if help || err != nil {
		return err
	}
	rest := fs.Args()
	path, err := pinsPath(*pinFile, *configPath, getenv)
	if err != nil {
		return err
	}
	switch {
	case verb == "list" && len(rest) == 0:
		p, err := pins.Load(path)
		if err != nil {
			return err
		}
		return printPins(stdout, path, p)
	case verb == "accept" && len(rest) <= 2:
		sid, tool := argAt(rest, 0), argAt(rest, 1)
		done, err := pins.Accept(path, sid, tool)
		if err != nil {
			return err
		}
		if len(done) == 0 {
			fmt.Fprintf(stderr, "nothing to accept in %s: no changed tool definitions match\n", path)
			return nil
		}
		for _, d := range done {
			fmt.Fprintf(stdout, "accepted %s\n", d)
		}
		return nil
	case verb == "reset" && len(rest) <= 1:
		done, err := pins.Reset(path, argAt(rest, 0))
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "forgot %d pin(s) in %s\n", len(done), path)
		return nil
	}
	fs.Usage()
	return errUsage
}

func argAt(a []string, i int) string {
	if i < len(a) {
		return a[i]
	}
	return ""
}

// pinsPath resolves the pin file: --pin-file, else the config's pin_file,
// else <user config dir>/sigil-hub/pins.json. The config is the one the hub
// reads (configFile, seedFile): a @sigilcore/mcp-proxy sigil.config.json
// is checked as the hub reads it, and has no pin file of its own, so the
// hub that wraps a server with it uses the default store.
func pinsPath(flagPath, configFlag string, getenv func(string) string) (string, error) {
	if flagPath != "" {
		return filepath.Abs(flagPath)
	}
	f := cliFlags{config: configFlag}
	if seed := seedFile(f, nil, getenv); seed != "" {
		if _, err := readSeedFile(seed, getenv); err != nil {
			return "", err
		}
	}
	if configPath := configFile(f, nil, getenv); configPath != "" {
		// An overlay cannot set pin_file (config.MergeOverlay): the team
		// file alone decides it.
		cfg, err := readConfigFiles(configPath, overlay{}, getenv)
		if err != nil {
			return "", err
		}
		if cfg.PinFile != "" {
			return cfg.PinFile, nil
		}
	}
	dir, err := signerConfigDir(getenv)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "pins.json"), nil
}

func printPins(w io.Writer, path string, p pins.File) error {
	fmt.Fprintf(w, "pin file: %s\n", path)
	if len(p) == 0 {
		fmt.Fprintln(w, "no pinned tools yet: the hub pins each tool the first time it lists it")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER_ID\tTOOL\tSTATE\tSHA256\tSINCE")
	changed := 0
	for _, sid := range slices.Sorted(maps.Keys(p)) {
		tools := p[sid]
		for _, name := range slices.Sorted(maps.Keys(tools)) {
			e := tools[name]
			state, hash, since := "pinned", e.SHA256, e.FirstSeen
			if e.Pending != "" {
				changed++
				state, hash, since = "CHANGED", e.SHA256[:min(12, len(e.SHA256))]+" -> "+e.Pending, e.PendingSince
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", sid, name, state, hash, since.Format("2006-01-02 15:04"))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if changed > 0 {
		fmt.Fprintf(w, "%d changed definition(s): review them, then run `sigil-hub pins accept [SERVER_ID [TOOL]]`\n", changed)
	}
	return nil
}

// parseVerb parses `sigil-hub <cmd> VERB [flags] [args]`: the verb, then
// fs's flags. help is true when the person asked for help (printed); a
// missing verb or a bad flag prints the usage and is errUsage.
func parseVerb(fs *flag.FlagSet, usage string, stderr io.Writer, args []string) (verb string, help bool, err error) {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if len(args) == 0 {
		fs.Usage()
		return "", false, errUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fs.Usage()
		return "", true, nil
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", true, nil
		}
		return "", false, errUsage
	}
	return args[0], false, nil
}
