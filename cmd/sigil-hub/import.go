package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/config"
	"github.com/sigilcore/sigil-hub/importer"
)

// `sigil-hub import`: write a hub file from the MCP servers a person's
// clients already run (README "Adopt in two minutes"). The work is in package
// importer; this file reads and writes files and talks to the person.

const importUsage = `sigil-hub import: write a sigil-hub.toml from the MCP servers your AI clients already have.

Usage:
  sigil-hub import [FILE...] [--out sigil-hub.toml] [--force] [--write] [--client NAME]

Without FILE it reads the usual files of Claude Desktop, Cursor (project and
user), Kimi, VS Code (project mcp.json, user mcp.json and settings.json) and
Codex (~/.codex/config.toml). Entries wrapped by @sigilcore/mcp-proxy or
sigil-hub are unwrapped. Secrets are never copied: env and header values
become $VARIABLE references, and the variables to set are listed (names
only). It then prints the one client entry that replaces them all; --write
puts it in the client files (each backed up first, next to it).

Flags:
`

// importSys is what runImport takes from the machine; tests replace it to
// run every OS's conventions on one machine.
type importSys struct {
	goos string
	now  time.Time
	cwd  string
}

func runImport(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) error {
	_, _ = ctx, stdin // the import is short and reads no input
	cwd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return importMain(args, environ, importSys{goos: runtime.GOOS, now: time.Now(), cwd: cwd}, stdout, stderr)
}

func importMain(args, environ []string, sys importSys, stdout, stderr io.Writer) error {
	getenv := envLookup(environ)
	fset := flag.NewFlagSet("sigil-hub import", flag.ContinueOnError)
	fset.SetOutput(stderr)
	out := fset.String("out", "sigil-hub.toml", "where to write the hub file; - for stdout")
	force := fset.Bool("force", false, "overwrite the --out file if it exists")
	write := fset.Bool("write", false, "also rewrite the client files to hold only the sigil-hub entry in place of the imported ones (each backed up first)")
	clientName := fset.String("client", "", "read only this client's files: claude, cursor, kimi, vscode or codex")
	fset.Usage = func() {
		fmt.Fprint(stderr, importUsage)
		fset.PrintDefaults()
	}
	// Files and flags may be interleaved: `import a.json --out x.toml`.
	var files []string
	for rest := args; ; {
		if err := fset.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return errUsage
		}
		rest = fset.Args()
		if len(rest) == 0 {
			break
		}
		files = append(files, rest[0])
		rest = rest[1:]
	}
	var client importer.Client
	if *clientName != "" {
		c, err := importer.ParseClient(*clientName)
		if err != nil {
			return fmt.Errorf("import: --client: %w", err)
		}
		client = c
	}
	if *write && *out == "-" {
		return errors.New("import: --write needs the hub file on disk: give --out a path, not -")
	}
	outPath := *out
	if outPath != "-" && !filepath.IsAbs(outPath) {
		outPath = filepath.Join(sys.cwd, outPath)
	}
	if outPath != "-" && !*force {
		if _, err := os.Stat(outPath); err == nil {
			return fmt.Errorf("import: %s already exists: not overwritten (pass --force to replace it, or --out another file)", *out)
		}
	}

	// Read.
	type input struct {
		src  importer.Source
		data []byte
	}
	var inputs []input
	if len(files) > 0 {
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("import: %w", err)
			}
			abs := f
			if !filepath.IsAbs(abs) {
				abs = filepath.Join(sys.cwd, f)
			}
			inputs = append(inputs, input{importer.Detect(abs, data, client), data})
		}
	} else {
		var looked []string
		for _, src := range importer.Locate(importer.LocateOptions{GOOS: sys.goos, Getenv: getenv, Cwd: sys.cwd, Client: client}) {
			looked = append(looked, src.Path)
			data, err := os.ReadFile(src.Path)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("import: %w", err)
			}
			inputs = append(inputs, input{src, data})
		}
		if len(inputs) == 0 {
			return fmt.Errorf("import: no client configuration found; looked for:\n  %s\nname the file: sigil-hub import FILE", strings.Join(looked, "\n  "))
		}
	}
	var entries []importer.Entry
	for _, in := range inputs {
		es, err := importer.Read(in.src, in.data)
		if err != nil {
			return fmt.Errorf("import: %s (%s): %w", in.src.Path, in.src.Client.Label(), err)
		}
		entries = append(entries, es...)
	}
	for i := range entries {
		readWrapperSeed(&entries[i])
	}

	res := importer.Build(entries, importer.BuildOptions{
		DeriveID:     config.DeriveServerID,
		DeriveURLID:  config.DeriveServerIDFromURL,
		CheckSignURL: authz.CheckSignURL,
		Now:          sys.now,
	})
	for _, n := range res.Notes {
		fmt.Fprintln(stderr, "note:", n)
	}
	if len(res.Servers) == 0 {
		var paths []string
		for _, in := range inputs {
			paths = append(paths, in.src.Path)
		}
		return fmt.Errorf("import: no MCP servers to import in %s", strings.Join(paths, ", "))
	}
	// The file must load: check it with every variable set.
	dir := sys.cwd
	if outPath != "-" {
		dir = filepath.Dir(outPath)
	}
	if _, err := config.Parse(bytes.NewReader(res.TOML), dir, func(string) string { return "set" }); err != nil {
		return fmt.Errorf("import: internal error: the generated file does not load (please report this): %w", err)
	}

	// Write the hub file.
	if outPath == "-" {
		if _, err := stdout.Write(res.TOML); err != nil {
			return err
		}
	} else {
		flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		if !*force {
			flags |= os.O_EXCL
		}
		f, err := os.OpenFile(outPath, flags, 0o644)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		_, werr := f.Write(res.TOML)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("import: %w", werr)
		}
	}

	// Tell the person what happened and what to set.
	where := *out
	if outPath == "-" {
		where = "stdout"
	}
	fmt.Fprintf(stderr, "wrote %s: %d server(s) from %d file(s)\n", where, len(res.Servers), len(res.Imported))
	for _, s := range res.Servers {
		state := ""
		if s.Disabled {
			state = " (disabled)"
		}
		for _, o := range s.From {
			fmt.Fprintf(stderr, "  servers.%s%s <- %s, entry %q\n", s.Name, state, o.Source, o.Key)
		}
	}
	if len(res.Vars) > 0 {
		fmt.Fprintln(stderr, "set these variables where sigil-hub runs (for example in the env of the client's sigil-hub entry):")
		for _, v := range res.Vars {
			fmt.Fprintf(stderr, "  %s\n", v.Name)
			for _, f := range v.From {
				fmt.Fprintf(stderr, "      from %s\n", f)
			}
		}
	}
	fmt.Fprintln(stderr, "the Sigil API key stays in the environment only (SIGIL_API_KEY), never in the hub file")

	// The one entry that replaces them all, per layout in use.
	cfgPath := outPath
	if outPath == "-" {
		cfgPath = "/path/to/sigil-hub.toml"
	}
	snippetOut := stdout
	if outPath == "-" {
		snippetOut = stderr
	}
	var layouts []importer.Layout
	for _, in := range inputs {
		if len(res.Imported[in.src.Path]) > 0 && !slices.Contains(layouts, in.src.Layout) {
			layouts = append(layouts, in.src.Layout)
		}
	}
	bypass := len(res.Bypass) > 0
	placeholder := importer.HubEntry{ConfigPath: cfgPath, Bypass: bypass, Env: []importer.KV{{Key: "SIGIL_API_KEY", Value: "sk_sigil_..."}}}
	for _, v := range res.Vars {
		placeholder.Env = append(placeholder.Env, importer.KV{Key: v.Name, Value: "..."})
	}
	if !*write {
		fmt.Fprintln(stderr, "replace the imported entries in your client's file with this one entry (or run again with --write):")
	}
	for _, l := range layouts {
		fmt.Fprintf(snippetOut, "\n%s:\n%s", layoutLabel(l), placeholder.Snippet(l))
	}
	if !*write {
		return nil
	}

	// --write: each client file gets the hub entry in place of the
	// imported ones, with the values that same file already held.
	for _, in := range inputs {
		keys := res.Imported[in.src.Path]
		if len(keys) == 0 {
			continue
		}
		he := importer.HubEntry{ConfigPath: cfgPath, Bypass: bypass}
		var missing []string
		if k, ok := res.APIKeyIn(in.src.Path); ok {
			he.Env = append(he.Env, importer.KV{Key: "SIGIL_API_KEY", Value: k})
		} else {
			missing = append(missing, "SIGIL_API_KEY")
		}
		for _, v := range res.Vars {
			if val, ok := v.ValueIn(in.src.Path); ok {
				he.Env = append(he.Env, importer.KV{Key: v.Name, Value: val})
			} else if in.src.Layout == importer.LayoutCodex {
				he.EnvVars = append(he.EnvVars, v.Name)
			} else {
				missing = append(missing, v.Name)
			}
		}
		var updated []byte
		var err error
		if in.src.Layout == importer.LayoutCodex {
			updated, err = importer.RewriteCodex(in.data, keys, he)
		} else {
			updated, err = importer.RewriteJSON(in.data, in.src.Layout, keys, he)
		}
		if err != nil {
			return fmt.Errorf("import: --write %s: %w", in.src.Path, err)
		}
		backup, err := importer.Apply(in.src.Path, in.data, updated, sys.now)
		if err != nil {
			return fmt.Errorf("import: --write %s: %w", in.src.Path, err)
		}
		fmt.Fprintf(stderr, "rewrote %s: %d entr%s replaced by %q (backup: %s)\n", in.src.Path, len(keys), plural(len(keys), "y", "ies"), "sigil-hub", backup)
		if len(missing) > 0 {
			fmt.Fprintf(stderr, "  its sigil-hub entry has no value for %s: add them to its env, or set them where the client runs\n", strings.Join(missing, ", "))
		}
	}
	return nil
}

// readWrapperSeed reads the sigil.config.json of a wrapped entry (its
// --config FILE.json, or the one in its cwd, where @sigilcore/mcp-proxy
// looks) and merges it into the entry (importer.ApplySeed). An explicit
// file that cannot be read or does not load leaves the entry in its client
// file: imported without it, its serverId and extractors would be lost.
func readWrapperSeed(e *importer.Entry) {
	if e.SeedConfig == "" || e.Skip != "" {
		return
	}
	if e.SeedUnknownFolder() {
		if e.SeedImplicit {
			e.Notes = append(e.Notes, "the client file does not say which folder it starts the wrapper in, so a "+config.SeedFileName+
				" there (which @sigilcore/mcp-proxy would read) was not looked for: if there is one, run import again with the entry's cwd set")
			return
		}
		e.Skip = "its --config " + e.SeedConfig + " is relative to the folder the client starts it in, which the client file does not say: make the path absolute and import again"
		return
	}
	data, err := os.ReadFile(e.SeedConfig)
	switch {
	case e.SeedImplicit && errors.Is(err, fs.ErrNotExist):
		return
	case err != nil:
		e.Skip = fmt.Sprintf("its %s cannot be read (%v): imported without it, its serverId and extractors would be lost; fix it and import again", e.SeedConfig, err)
		return
	}
	// Every variable counts as set: the file is checked, not expanded.
	s, err := config.ParseSeed(data, func(string) string { return "set" })
	if err != nil {
		e.Skip = fmt.Sprintf("its %s does not load (%s): fix it and import again", e.SeedConfig, strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	seed := importer.Seed{SignURL: s.SignURL, LogLevel: s.LogLevel, ServerID: s.ServerID, ServerName: s.ServerName,
		PendingTimeout: s.PendingTimeout.Milliseconds(), Headers: s.HeaderTemplates}
	for tool, x := range s.Extractors {
		if seed.Extractors == nil {
			seed.Extractors = map[string]map[string]string{}
		}
		m := maps.Clone(x.Fields)
		if x.Action != "" {
			m["action"] = x.Action
		}
		seed.Extractors[tool] = m
	}
	importer.ApplySeed(e, e.SeedConfig, seed)
}

func layoutLabel(l importer.Layout) string {
	switch l {
	case importer.LayoutVSCode:
		return "VS Code (.vscode/mcp.json or the user mcp.json)"
	case importer.LayoutVSCodeSettings:
		return "VS Code settings.json"
	case importer.LayoutCodex:
		return "Codex (~/.codex/config.toml)"
	}
	return "Claude Desktop, Cursor, Kimi (mcpServers)"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
