#!/usr/bin/env bash
# npm-e2e.sh proves `npx -y sigil-hub` end to end, as a user of
# @sigilcore/mcp-proxy would run it: it builds the npm packages
# (scripts/npm.sh), starts a real npm registry on loopback (verdaccio 6.8.0
# from the npm registry, storage in a temporary folder, no uplinks),
# publishes them there, and then, from an empty folder with an empty npm
# cache, runs `npx -y sigil-hub@VERSION --help` and one governed session
# through the installed binary: the example notes server wrapped with the
# demo's embedded policy (no account, no network), where read_note is
# approved and delete_note is denied (-32001) before it reaches the server.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/sigil-hub-npm-e2e.XXXXXX")
registry_pid=""
cleanup() {
	if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

VERSION=${VERSION:-0.0.0-e2e.$(date +%s)}
export VERSION
OUT="$work/packages" scripts/npm.sh >/dev/null

echo "npm-e2e: starting verdaccio on loopback" >&2
mkdir -p "$work/verdaccio/storage"
(cd "$work/verdaccio" && npm install --no-audit --no-fund --loglevel=error verdaccio@6.8.0 >/dev/null)
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
registry="http://127.0.0.1:$port/"
cat >"$work/verdaccio/config.yaml" <<YAML
storage: $work/verdaccio/storage
auth:
  htpasswd:
    file: $work/verdaccio/htpasswd
    max_users: -1
uplinks: {}
packages:
  '**':
    access: \$all
    publish: \$all
log: { type: stdout, format: pretty, level: warn }
YAML
"$work/verdaccio/node_modules/.bin/verdaccio" --config "$work/verdaccio/config.yaml" --listen "127.0.0.1:$port" >"$work/verdaccio.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 100); do
	if node -e 'fetch(process.argv[1]+"-/ping").then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "$registry"; then break; fi
	sleep 0.2
done

# A user's environment: this registry only, a fresh cache, no project.
export npm_config_registry="$registry" npm_config_cache="$work/npm-cache" npm_config_update_notifier=false
printf '//127.0.0.1:%s/:_authToken=e2e\n' "$port" >"$work/npmrc"
export npm_config_userconfig="$work/npmrc"
for tgz in "$work"/packages/*.tgz; do
	npm publish --loglevel=error --tag e2e "$tgz" >/dev/null
done
echo "npm-e2e: published $(ls "$work"/packages/*.tgz | wc -l) packages at $VERSION" >&2

user="$work/empty-folder"
mkdir -p "$user"
cd "$user"
help=$(npx -y "sigil-hub@$VERSION" --help)
case "$help" in
*"sigil-hub [flags] -- COMMAND"*) ;;
*) echo "npm-e2e: npx sigil-hub --help did not print the help on stdout" >&2; exit 1 ;;
esac
echo "npm-e2e: npx -y sigil-hub@$VERSION --help: ok" >&2
set +e
npx -y "sigil-hub@$VERSION" --no-such-flag >/dev/null 2>&1
code=$?
set -e
if [ "$code" != 2 ]; then echo "npm-e2e: a wrong flag exited $code through npx, want the binary's 2" >&2; exit 1; fi
echo "npm-e2e: exit status passed through (2 for a wrong flag)" >&2

(cd "$root" && go build -o "$work/notes" ./examples/upstreams/notes)
node "$root/scripts/npm-e2e-session.js" "$VERSION" "$root/examples/demo/warranty.md" "$work/notes"
echo "npm-e2e: 1 passed, 0 failed"
