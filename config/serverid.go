package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// DeriveServerID returns the serverId of a stdio upstream that has no
// explicit server_id (docs/protocol.md#deriving-the-serverid): the package
// the command runs, without its version, for
//
//	npx [flags] PKG[@ver]        (also -p/--package PKG; @scope/pkg@1.2 → @scope/pkg)
//	bunx [flags] PKG[@ver]
//	pnpm dlx [flags] PKG[@ver]
//	uvx [flags] PKG[==ver|@ver]  (also --from PKG)
//	pipx run [flags] PKG         (also --spec PKG)
//	docker run [flags] IMAGE[:tag][@digest] → IMAGE (also docker container run)
//
// with `uvx --from SPEC TOOL` giving TOOL (one source can provide several
// tools); for an interpreter, the script, module or package it runs, never
// the interpreter (cfgScriptID names a script):
//
//	node [flags] SCRIPT            python[3[.N]] [flags] SCRIPT
//	python[3[.N]] [flags] -m MODULE → MODULE
//	deno run [flags] SCRIPT|npm:PKG|jsr:PKG
//	bun [run] [flags] SCRIPT
//
// and otherwise the base name of the executable without a ".exe" suffix.
// The result is not validated; Parse checks it. Pure; safe for
// concurrent use.
func DeriveServerID(command string, args []string) string {
	base := command
	if i := strings.LastIndexAny(base, `/\`); i >= 0 {
		base = base[i+1:]
	}
	if strings.HasSuffix(strings.ToLower(base), ".exe") {
		base = base[:len(base)-len(".exe")]
	}
	kind := strings.ToLower(base)
	kind = strings.TrimSuffix(kind, ".cmd") // npx.cmd on Windows
	var pkg string
	switch kind {
	case "npx":
		pkg = cfgNodePackage(cfgPackageArg(args, cfgNpxValueFlags, "-p", "--package"))
	case "bunx":
		pkg = cfgNodePackage(cfgPackageArg(args, cfgBunxValueFlags, "-p", "--package"))
	case "pnpm":
		if rest, ok := cfgAfterSubcommand(args, cfgPnpmGlobalValueFlags, "dlx"); ok {
			pkg = cfgNodePackage(cfgPackageArg(rest, cfgPnpmDlxValueFlags, "--package"))
		}
	case "uvx":
		if tool := cfgPackageArg(args, cfgUvxValueFlags); tool != "" {
			pkg = cfgPythonPackage(tool)
		} else {
			pkg = cfgPythonPackage(cfgPackageArg(args, cfgUvxValueFlags, "--from"))
		}
	case "node", "nodejs":
		if script := cfgPackageArg(args, cfgNodeValueFlags); script != "" && !cfgHasFlag(args, cfgNodeValueFlags, "-e", "--eval", "-p", "--print") {
			pkg = cfgScriptID(script)
		}
	case "bun":
		rest := args
		if r, ok := cfgAfterSubcommand(args, cfgBunValueFlags, "run"); ok {
			rest = r
		}
		if script := cfgPackageArg(rest, cfgBunValueFlags); script != "" {
			pkg = cfgScriptID(script)
		}
	case "deno":
		if rest, ok := cfgAfterSubcommand(args, cfgDenoValueFlags, "run"); ok {
			pkg = cfgDenoSpec(cfgPackageArg(rest, cfgDenoValueFlags))
		}
	case "pipx":
		if rest, ok := cfgAfterSubcommand(args, cfgPipxGlobalValueFlags, "run"); ok {
			pkg = cfgPythonPackage(cfgPackageArg(rest, cfgPipxRunValueFlags, "--spec"))
		}
	case "docker":
		if rest, ok := cfgAfterSubcommand(args, cfgDockerGlobalValueFlags, "run"); ok {
			pkg = cfgImageName(cfgPackageArg(rest, cfgDockerRunValueFlags))
		} else if rest, ok := cfgAfterSubcommand(args, cfgDockerGlobalValueFlags, "container"); ok && len(rest) > 0 && rest[0] == "run" {
			pkg = cfgImageName(cfgPackageArg(rest[1:], cfgDockerRunValueFlags))
		}
	}
	if cfgPython(kind) && !cfgHasFlag(args, cfgPythonValueFlags, "-c") {
		if mod := cfgPythonModule(args); mod != "" {
			pkg = mod
		} else if script := cfgPackageArg(args, cfgPythonValueFlags); script != "" {
			pkg = cfgScriptID(script)
		}
	}
	if pkg != "" {
		return pkg
	}
	return base
}

// cfgPython reports whether an executable's name is a Python interpreter:
// python, python3, python3.12, py.
func cfgPython(kind string) bool {
	if kind == "py" || kind == "python" {
		return true
	}
	v, ok := strings.CutPrefix(kind, "python")
	return ok && v != "" && strings.Trim(v, "0123456789.") == ""
}

// cfgPythonModule returns the module of python's -m (-m MOD, -mMOD), or "".
func cfgPythonModule(args []string) string {
	for i := 0; i < len(args); {
		a := args[i]
		switch {
		case a == "--" || !strings.HasPrefix(a, "-") || a == "-":
			return ""
		case a == "-m":
			if i+1 < len(args) {
				return args[i+1]
			}
			return ""
		case strings.HasPrefix(a, "-m"):
			return a[2:]
		}
		i += cfgSkipFlag(args[i:], cfgPythonValueFlags)
	}
	return ""
}

// cfgHasFlag reports whether args, before their first positional argument,
// hold one of flags (as is, or with =value or, for one-letter flags, an
// attached value: -mpkg).
func cfgHasFlag(args []string, takesValue func(string) bool, flags ...string) bool {
	for i := 0; i < len(args); {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			return false
		}
		for _, f := range flags {
			if a == f || strings.HasPrefix(a, f+"=") || len(f) == 2 && strings.HasPrefix(a, f) {
				return true
			}
		}
		i += cfgSkipFlag(args[i:], takesValue)
	}
	return false
}

// cfgScriptGeneric are entry-point names shared by many servers; a script
// with one of them is named by its folder.
var cfgScriptGeneric = map[string]bool{"index": true, "main": true, "server": true, "cli": true, "app": true,
	"__main__": true, "mod": true, "run": true, "start": true}

// cfgScriptBuildDir are folders that hold a project's entry point rather
// than name it.
var cfgScriptBuildDir = map[string]bool{"dist": true, "build": true, "lib": true, "src": true, "bin": true,
	"out": true, "esm": true, "cjs": true, ".": true, "..": true, "": true}

// cfgScriptID names a script: its file name without the extension, or, for
// a generic entry point (index.js, main.py, server.ts…), the nearest folder
// above it that is not a build folder — the project's: …/weather/build/index.js
// → weather, node_modules/@scope/pkg/dist/index.js → @scope/pkg. A URL
// (deno) is kept without query or fragment.
func cfgScriptID(script string) string {
	if strings.Contains(script, "://") {
		if u, err := url.Parse(script); err == nil {
			u.RawQuery, u.Fragment, u.User = "", "", nil
			return u.String()
		}
		return script
	}
	parts := strings.Split(strings.ReplaceAll(script, `\`, "/"), "/")
	name := parts[len(parts)-1]
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		name = name[:i]
	}
	if !cfgScriptGeneric[strings.ToLower(name)] {
		return name
	}
	for i := len(parts) - 2; i >= 0; i-- {
		d := parts[i]
		if cfgScriptBuildDir[strings.ToLower(d)] {
			continue
		}
		if i > 0 && strings.HasPrefix(parts[i-1], "@") {
			return parts[i-1] + "/" + d
		}
		return d
	}
	return name
}

// cfgDenoSpec names what `deno run` runs: an npm: or jsr: package without
// its version, else the script.
func cfgDenoSpec(spec string) string {
	for _, prefix := range []string{"npm:", "jsr:"} {
		if p, ok := strings.CutPrefix(spec, prefix); ok {
			return cfgNodePackage(strings.TrimPrefix(p, "/"))
		}
	}
	if spec == "" {
		return ""
	}
	return cfgScriptID(spec)
}

func cfgNodeValueFlags(f string) bool {
	switch f {
	case "-r", "--require", "--import", "--loader", "--experimental-loader", "--env-file", "-C", "--conditions",
		"--input-type", "--title", "--stack-size", "-e", "--eval", "-p", "--print":
		return true
	}
	return false
}

func cfgBunValueFlags(f string) bool {
	switch f {
	case "--cwd", "-r", "--preload", "-c", "--config", "--env-file", "--port", "--conditions", "-e", "--eval":
		return true
	}
	return false
}

func cfgDenoValueFlags(f string) bool {
	switch f {
	case "-c", "--config", "--import-map", "--lock", "--cert", "--location", "--seed", "--v8-flags",
		"--env-file", "--inspect", "--ext":
		return true
	}
	return false
}

func cfgPythonValueFlags(f string) bool {
	switch f {
	case "-W", "-X", "-c", "-m", "--check-hash-based-pycs":
		return true
	}
	return false
}

// DeriveServerIDFromURL returns the serverId of a remote upstream that has
// no explicit server_id: scheme://host[:port]/path, with scheme and
// host lowercased, the port and path as written, and no userinfo, query or
// fragment. Errors never contain the URL (it may hold credentials). Pure;
// safe for concurrent use.
func DeriveServerIDFromURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errors.New("the URL scheme must be http or https")
	}
	if u.Host == "" || u.Opaque != "" {
		return "", errors.New("the URL has no host")
	}
	return u.Scheme + "://" + strings.ToLower(u.Host) + u.EscapedPath(), nil
}

// Flags (of the tools DeriveServerID knows) that take a separate value. Flags
// written as --flag=value never consume the next argument; unknown flags are
// taken to be booleans. They are functions, not package variables, so the
// package keeps no mutable state.
func cfgNpxValueFlags(f string) bool {
	switch f {
	case "-p", "--package", "-c", "--call", "--registry", "--cache", "--userconfig",
		"--prefix", "-w", "--workspace", "--loglevel", "--node-options", "--script-shell":
		return true
	}
	return false
}

func cfgBunxValueFlags(f string) bool {
	switch f {
	case "-p", "--package", "--cwd", "--config", "-c", "--registry":
		return true
	}
	return false
}

func cfgPnpmGlobalValueFlags(f string) bool {
	switch f {
	case "-C", "--dir", "--filter", "-F", "--loglevel", "--workspace-root", "--reporter":
		return true
	}
	return false
}

func cfgPnpmDlxValueFlags(f string) bool {
	switch f {
	case "--package", "--allow-build", "-C", "--dir", "--reporter", "--loglevel":
		return true
	}
	return false
}

func cfgUvxValueFlags(f string) bool {
	switch f {
	case "--from", "--with", "--with-editable", "--with-requirements", "-w",
		"--python", "-p", "--index", "--default-index", "--index-url", "-i",
		"--extra-index-url", "--find-links", "-f", "--cache-dir", "--directory",
		"--project", "--config-file", "--python-preference", "--color",
		"--constraints", "-c", "--overrides", "--build-constraints", "-b",
		"--refresh-package", "--upgrade-package", "-P", "--reinstall-package",
		"--no-binary-package", "--no-build-package", "--keyring-provider",
		"--resolution", "--prerelease", "--exclude-newer", "--index-strategy",
		"--link-mode", "--env-file", "--allow-insecure-host", "--config-setting", "-C":
		return true
	}
	return false
}

func cfgPipxGlobalValueFlags(string) bool { return false }

func cfgPipxRunValueFlags(f string) bool {
	switch f {
	case "--spec", "--python", "--pip-args", "--index-url", "-i", "--fetch-python":
		return true
	}
	return false
}

func cfgDockerGlobalValueFlags(f string) bool {
	switch f {
	case "--context", "-c", "--host", "-H", "--config", "--log-level", "-l",
		"--tlscacert", "--tlscert", "--tlskey":
		return true
	}
	return false
}

func cfgDockerRunValueFlags(f string) bool {
	switch f {
	case "-e", "--env", "--env-file", "-v", "--volume", "--name", "-p", "--publish",
		"--network", "--net", "--network-alias", "-w", "--workdir", "-u", "--user",
		"--entrypoint", "--mount", "-l", "--label", "--label-file", "-h", "--hostname",
		"--add-host", "--cap-add", "--cap-drop", "--cpus", "-m", "--memory",
		"--memory-swap", "--memory-reservation", "--platform", "--pull", "--restart",
		"--runtime", "--security-opt", "--tmpfs", "--ulimit", "--device", "--dns",
		"--dns-search", "--dns-option", "--ipc", "--pid", "--uts", "--userns",
		"--shm-size", "--stop-signal", "--stop-timeout", "--log-driver", "--log-opt",
		"--gpus", "--cidfile", "-a", "--attach", "--cgroupns", "--cgroup-parent",
		"--group-add", "--health-cmd", "--health-interval", "--health-retries",
		"--health-timeout", "--health-start-period", "--expose", "--link",
		"--volumes-from", "--volume-driver", "--mac-address", "--ip", "--ip6",
		"--isolation", "--sysctl", "--storage-opt", "--domainname", "--oom-score-adj",
		"--cpuset-cpus", "--cpuset-mems", "--cpu-shares", "-c", "--cpu-period",
		"--cpu-quota", "--blkio-weight", "--pids-limit", "--kernel-memory",
		"--annotation", "--detach-keys", "--device-cgroup-rule", "--link-local-ip":
		return true
	}
	return false
}

// cfgSkipFlag reports how many arguments the flag at args[0] occupies
// (1 or 2) following pflag/getopt conventions: "--f=v" and "-fVALUE" carry
// their value, "-abc" is a cluster of short flags in which the first one
// that takes a value takes the rest of the cluster or the next argument.
func cfgSkipFlag(args []string, takesValue func(string) bool) int {
	a := args[0]
	if strings.HasPrefix(a, "--") {
		if strings.Contains(a, "=") || !takesValue(a) {
			return 1
		}
		return min(2, len(args))
	}
	for i := 1; i < len(a); i++ {
		if takesValue("-" + a[i:i+1]) {
			if i+1 < len(a) {
				return 1 // value attached: -eFOO=bar
			}
			return min(2, len(args))
		}
	}
	return 1
}

// cfgPackageArg returns the package a runner would fetch: the value of the
// first of valueOf (e.g. --package) if given, else the first positional
// argument. "--" ends the flags.
func cfgPackageArg(args []string, takesValue func(string) bool, valueOf ...string) string {
	for i := 0; i < len(args); {
		a := args[i]
		if a == "--" {
			if i+1 < len(args) {
				return args[i+1]
			}
			return ""
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			return a
		}
		for _, f := range valueOf {
			if v, ok := strings.CutPrefix(a, f+"="); ok {
				return v
			}
			if a == f && i+1 < len(args) {
				return args[i+1]
			}
		}
		i += cfgSkipFlag(args[i:], takesValue)
	}
	return ""
}

// cfgAfterSubcommand skips global flags and returns the arguments after
// the first positional argument if it equals sub.
func cfgAfterSubcommand(args []string, takesValue func(string) bool, sub string) ([]string, bool) {
	for i := 0; i < len(args); {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			if a == sub {
				return args[i+1:], true
			}
			return nil, false
		}
		i += cfgSkipFlag(args[i:], takesValue)
	}
	return nil, false
}

// cfgNodePackage strips the version from an npm package spec:
// "@scope/pkg@1.2" → "@scope/pkg", "pkg@latest" → "pkg". Specs with a
// protocol (github:, https://, file:) are returned unchanged.
func cfgNodePackage(spec string) string {
	if spec == "" || strings.Contains(spec, ":") {
		return spec
	}
	from := 0
	if strings.HasPrefix(spec, "@") {
		from = 1
	}
	if i := strings.IndexByte(spec[from:], '@'); i >= 0 {
		return spec[:from+i]
	}
	return spec
}

// cfgPythonPackage strips extras, version specifiers and markers from a
// Python requirement: "pkg[cli]==1.0" → "pkg", "pkg@1.0" → "pkg". URLs
// (git+https://…) are returned unchanged.
func cfgPythonPackage(spec string) string {
	if strings.Contains(spec, "://") {
		return spec
	}
	if i := strings.IndexAny(spec, "[=<>!~@; "); i >= 0 {
		return spec[:i]
	}
	return spec
}

// cfgImageName strips the tag and digest from a container image reference:
// "ghcr.io/o/img:1.2@sha256:…" → "ghcr.io/o/img"; a registry port
// ("localhost:5000/img") is kept.
func cfgImageName(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i >= 0 && i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}

// cfgCheckServerID validates a serverId, explicit or derived: 1–256
// printable ASCII characters without spaces (docs/faults.md case 70). A
// serverId is used verbatim, so nothing is rewritten.
func cfgCheckServerID(id string) error {
	if id == "" {
		return errors.New("must not be empty")
	}
	if len(id) > 256 {
		return fmt.Errorf("is %d bytes long; at most 256 are allowed", len(id))
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return errors.New("may contain only printable ASCII characters without spaces")
		}
	}
	return nil
}

// ServerIDProblems says why serverID cannot be written unambiguously in a
// warranty.md ## mcp block (docs/protocol.md#deriving-the-serverid): its
// lists are comma-separated, trimmed and unquoted; a pattern is an exact
// value or ends in one '*'; tool patterns are <server>.<tool>; the scoped
// allow_only[action=...] form ends at ']'. Nil when the id is fine. Pure;
// safe for concurrent use.
func ServerIDProblems(serverID string) []string {
	var out []string
	if strings.Contains(serverID, ",") {
		out = append(out, "contains ',': ## mcp lists are comma-separated, so it cannot be written in allowed_servers, allowed_tools, blocked_tools or require_approval; set server_id to a name without ','")
	}
	if i := strings.IndexByte(serverID, '*'); i >= 0 {
		out = append(out, "contains '*': a ## mcp pattern may only end in one '*' wildcard, so this serverId cannot be matched exactly; set server_id to a name without '*'")
	}
	if strings.Contains(serverID, ".") {
		out = append(out, "contains '.': ## mcp tool patterns are <server>.<tool>, so allowed_tools / blocked_tools entries for it are ambiguous (the policy service may split at the first '.'); allowed_servers still works; set server_id (e.g. \"github\") for clean patterns")
	}
	if strings.TrimSpace(serverID) != serverID {
		out = append(out, "starts or ends with white space, which policy lists trim away; set server_id without it")
	}
	if len(serverID) >= 2 && (serverID[0] == '"' || serverID[0] == '\'') && serverID[len(serverID)-1] == serverID[0] {
		out = append(out, "is wrapped in quotes, which policy lists strip; set server_id without them")
	}
	if strings.ContainsFunc(serverID, cfgIsControl) {
		out = append(out, "contains a control character or line break, which a warranty.md line cannot hold")
	}
	if strings.Contains(serverID, "]") {
		out = append(out, "contains ']': it cannot appear in a ## custom allow_only[action=...] scope")
	}
	if strings.Contains(serverID, "<!--") {
		out = append(out, "contains '<!--', which starts an HTML comment in warranty.md")
	}
	return out
}
