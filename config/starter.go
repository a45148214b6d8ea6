package config

// Starter returns the commented starter config that `sigil-hub
// --init` writes. It parses with Parse (a test pins this) once the
// variables it references are set. Pure; safe for concurrent use.
func Starter() string { return cfgStarter }

const cfgStarter = `# sigil-hub configuration.
#
# Every tools/call is authorized by Sigil Sign before it reaches an upstream.
# The API key is read only from the environment: export SIGIL_API_KEY=...
# It is never written in this file.

# sign_url = "https://sign.sigilcore.com"
# log_level = "info"            # debug | info | warn | error
# log_format = "text"           # text | json (one object per line, with a stable "event")
# pending_timeout = 30000       # ms a call held for approval may wait
# verify = "warn"               # off | warn | enforce (attestation check)

# One table per upstream MCP server. The table name is the namespace:
# the tool "read_file" of [servers.files] is exposed as "files__read_file".

[servers.files]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem", "."]
# tools = { deny = ["write_*", "delete_*"] }

# A remote upstream. Header values must reference environment variables
# (only a scheme prefix such as "Bearer " may be written around them).
# [servers.linear]
# url = "https://mcp.linear.app/mcp"
# headers = { Authorization = "Bearer ${LINEAR_TOKEN}" }
`
