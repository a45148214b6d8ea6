// Package config owns sigil-hub's configuration file: it reads the TOML
// text into a Config, applies every default, validates every key and
// reports every problem at once, each prefixed with its key path.
//
// It owns:
//   - parsing and validation (config.go), including $VAR expansion in env
//     and headers and the refusal of secrets written in the file or of
//     references to the hub's own secrets (README "Security guarantees");
//   - the personal overlay applied on top of a team file (overlay.go,
//     README "A shared team file and your own overlay");
//   - serverId derivation from a command line or a URL, and the checks
//     on a serverId (serverid.go);
//   - the oauth setting of a remote server (oauth.go);
//   - the starter file `sigil-hub --init` writes (starter.go);
//   - the masked display of env and headers values for `check --print`
//     (MaskedValues).
//
// A Config is a plain value: hub.New translates it into each leaf's
// options. config reads no files and never the process environment: the
// caller passes the file's bytes and a getenv. It imports authz (the one
// Sign URL check), upstreams (only HubSecret, the one list of the hub's
// own secrets), internal/secretlike and BurntSushi/toml; it must not
// import hub, pins or cmd/.
package config
