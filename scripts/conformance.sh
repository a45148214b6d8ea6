#!/usr/bin/env bash
# scripts/conformance.sh: run the MCP conformance suite
# (@modelcontextprotocol/conformance@0.1.16, server mode, active suite)
# against a conformant upstream directly, then through sigil-hub wrapping it
# in single-wrap mode, and compare the two.
#
# The upstream is mcp-go's conformance server
# (github.com/mark3labs/mcp-go/examples/conformance, from the module go.mod
# already requires); its results are the baseline. The hub runs as
#   sigil-hub --remote <upstream>/mcp --server-id conformance \
#             --policy testdata/conformance/warranty.md --listen 127.0.0.1:0
# (no key: the embedded policy engine allows every tool of the upstream, so
# every tools/call is still authorized before it is forwarded).
#
# Fails when:
# - the hub fails a scenario the upstream passed;
# - testdata/conformance/expected-failures.yml is wrong: an entry without a
#   reason comment, an unknown scenario, an entry the upstream passes 10 times
#   out of 10 (stale), or a scenario the upstream fails that is not listed.
# Listed scenarios may be intermittent upstream: both sides are retried, and
# the hub must pass such a scenario at least once if the upstream does.
#
# Needs: Go, npm (Node 22 itself comes from testdata/conformance, `node@22`
# from npm), bash >= 4. Everything listens on 127.0.0.1. Takes well under a
# minute when nothing fails; at most a few minutes in the worst case.
# Set SIGIL_CONFORMANCE_KEEP=1 to keep the work folder (binaries, logs, the
# suite's checks.json files).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cdir=$root/testdata/conformance
baseline=$cdir/expected-failures.yml
stale_runs=10 # upstream runs of a listed scenario before its entry is stale
flaky_runs=60 # runs per side of a listed scenario the hub has not passed yet

me=conformance
# shellcheck source=scripts/conformance-common.sh
. "$root/scripts/conformance-common.sh"

# --- the suite and Node 22 (pinned by testdata/conformance/package-lock.json)
if [ ! -x "$cdir/node_modules/.bin/node" ] || [ ! -f "$cdir/node_modules/@modelcontextprotocol/conformance/dist/index.js" ] ||
  [ "$cdir/package-lock.json" -nt "$cdir/node_modules/.package-lock.json" ]; then
  echo "conformance: installing the suite and Node 22 (npm ci in testdata/conformance)"
  (cd "$cdir" && npm ci --no-audit --no-fund --loglevel=error)
fi
node=$cdir/node_modules/.bin/node
suite=$cdir/node_modules/@modelcontextprotocol/conformance/dist/index.js
node_major=$("$node" -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 22 ] || die "the suite needs Node >= 22, $node is $("$node" --version)"
suite_version=$("$node" -p "require('$cdir/node_modules/@modelcontextprotocol/conformance/package.json').version")
[ "$suite_version" = 0.1.16 ] || die "expected @modelcontextprotocol/conformance 0.1.16, found $suite_version"
timeout_cmd=()
if command -v timeout >/dev/null 2>&1; then
  timeout_cmd=(timeout 300)
fi

# --- the baseline file: "server:" then "- scenario" entries, each with a
# reason in the comment line(s) right above it (or an inline "# reason").
declare -A listed=()
listed_order=()
section=
reason=0
lineno=0
while IFS= read -r line || [ -n "$line" ]; do
  lineno=$((lineno + 1))
  if [[ $line =~ ^[[:space:]]*$ ]]; then
    reason=0
  elif [[ $line =~ ^[[:space:]]*# ]]; then
    reason=1
  elif [[ $line =~ ^([A-Za-z_]+):[[:space:]]*(#.*)?$ ]]; then
    section=${BASH_REMATCH[1]}
    [ "$section" = server ] || die "$baseline:$lineno: only a server: list is allowed (this script runs server mode only)"
    reason=0
  elif [[ $line =~ ^[[:space:]]+-[[:space:]]+([A-Za-z0-9_.-]+)[[:space:]]*(#.*)?$ ]]; then
    [ "$section" = server ] || die "$baseline:$lineno: entry outside the server: list"
    name=${BASH_REMATCH[1]}
    [ "$reason" = 1 ] || [ -n "${BASH_REMATCH[2]}" ] || die "$baseline:$lineno: $name has no reason (a comment line right above it)"
    [ -z "${listed[$name]:-}" ] || die "$baseline:$lineno: $name is listed twice"
    listed[$name]=1
    listed_order+=("$name")
    reason=0
  else
    die "$baseline:$lineno: cannot read this line: $line"
  fi
done <"$baseline"

# --- build
echo "conformance: building sigil-hub and mcp-go's conformance server"
go build -o "$work/sigil-hub" ./cmd/sigil-hub
go build -o "$work/upstream" github.com/mark3labs/mcp-go/examples/conformance

# Processes run with a clean environment: no SIGIL_* variable of the caller
# (SIGIL_HUB_TOKEN_*, SIGIL_API_KEY, ...) changes what is tested.
clean_env=(env -i "PATH=$PATH" "HOME=${HOME:-$work}" "TMPDIR=${TMPDIR:-/tmp}")

free_port() {
  "$node" -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# http_ok URL: exit 0 when GET URL answers 2xx.
http_ok() {
  "$node" -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "$1"
}

# --- start the upstream (a few tries: the free port can be taken meanwhile)
upstream_url=
for attempt in 1 2 3; do
  port=$(free_port)
  "${clean_env[@]}" CONFORMANCE_ADDR="127.0.0.1:$port" "$work/upstream" </dev/null >"$work/upstream.log" 2>&1 &
  upid=$!
  pids+=("$upid")
  deadline=$((SECONDS + 30))
  while [ $SECONDS -lt $deadline ] && kill -0 "$upid" 2>/dev/null; do
    if http_ok "http://127.0.0.1:$port/health"; then
      upstream_url=http://127.0.0.1:$port/mcp
      break
    fi
    sleep 0.1
  done
  [ -n "$upstream_url" ] && break
  kill "$upid" 2>/dev/null || true
  echo "conformance: upstream did not become healthy on port $port (try $attempt):" >&2
  cat "$work/upstream.log" >&2
done
[ -n "$upstream_url" ] || die "mcp-go's conformance server did not start"
echo "conformance: upstream at $upstream_url"

# --- start the hub in single-wrap mode on an ephemeral loopback port
"${clean_env[@]}" "$work/sigil-hub" --remote "$upstream_url" --server-id conformance \
  --policy "$cdir/warranty.md" --listen 127.0.0.1:0 </dev/null >"$work/hub.stdout" 2>"$work/hub.log" &
hpid=$!
pids+=("$hpid")
hub_url=
deadline=$((SECONDS + 30))
while [ $SECONDS -lt $deadline ] && kill -0 "$hpid" 2>/dev/null; do
  if [ -z "$hub_url" ]; then
    hub_url=$(sed -n 's/.*serving MCP over Streamable HTTP.* url=\(http:\/\/127\.0\.0\.1:[0-9]*\/mcp\).*/\1/p' "$work/hub.log" | head -n1)
  fi
  if [ -n "$hub_url" ] && grep -q 'upstream ready' "$work/hub.log"; then
    break
  fi
  sleep 0.1
done
if [ -z "$hub_url" ] || ! grep -q 'upstream ready' "$work/hub.log"; then
  cat "$work/hub.log" >&2
  die "sigil-hub did not start serving with its upstream ready within 30 s"
fi
echo "conformance: hub at $hub_url"

# run_suite URL OUTDIR LOG [SCENARIO]: run the active suite (or one scenario).
# The suite's own exit code only says whether something failed; the results
# are read from OUTDIR.
run_suite() {
  local args=(server --url "$1" -o "$2")
  [ -n "${4:-}" ] && args+=(--scenario "$4")
  "${timeout_cmd[@]}" "$node" "$suite" "${args[@]}" >"$3" 2>&1 || true
}


# once URL SCENARIO: run one scenario; exit 0 when it passed.
runs=0
once() {
  runs=$((runs + 1))
  local out=$work/rerun-$runs
  run_suite "$1" "$out" "$out.log" "$2"
  [ "$(results "$out" | awk -v s="$2" '$1 == s {print $2}')" = pass ]
}

echo "conformance: suite against the upstream"
run_suite "$upstream_url" "$work/upstream-results" "$work/upstream-suite.log"
echo "conformance: suite against the hub"
run_suite "$hub_url" "$work/hub-results" "$work/hub-suite.log"

declare -A up=() hub=()
while read -r s r; do up[$s]=$r; done < <(results "$work/upstream-results")
while read -r s r; do hub[$s]=$r; done < <(results "$work/hub-results")
[ ${#up[@]} -gt 0 ] || {
  cat "$work/upstream-suite.log" >&2
  die "the suite produced no results against the upstream"
}

errors=()
for name in "${listed_order[@]}"; do
  [ -n "${up[$name]:-}" ] || errors+=("$name: listed in expected-failures.yml but not a scenario of the active suite")
done
for s in "${!hub[@]}"; do
  [ -n "${up[$s]:-}" ] || errors+=("$s: ran against the hub but not against the upstream")
done

rows=()
for s in $(printf '%s\n' "${!up[@]}" | sort); do
  u=${up[$s]}
  h=${hub[$s]:-missing}
  note=
  if [ -n "${listed[$s]:-}" ]; then
    # Intermittent upstream failure: retry until the entry is shown to be
    # needed (an upstream failure) and the hub has passed, or runs run out.
    upn=1 hubn=1 upp=0 upf=0 hubp=0
    if [ "$u" = pass ]; then upp=1; else upf=1; fi
    if [ "$h" = pass ]; then hubp=1; fi
    while :; do
      need_up=0 need_hub=0
      if [ $upf = 0 ] && [ $upn -lt $stale_runs ]; then need_up=1; fi
      if [ $upp = 0 ] && [ $hubp = 0 ] && [ $upn -lt $flaky_runs ]; then need_up=1; fi
      if [ $upf = 0 ] && [ $upn -ge $stale_runs ]; then break; fi # stale: stop here
      if [ $hubp = 0 ] && [ $hubn -lt $flaky_runs ]; then need_hub=1; fi
      if [ $need_up = 0 ] && [ $need_hub = 0 ]; then break; fi
      if [ $need_up = 1 ]; then
        upn=$((upn + 1))
        if once "$upstream_url" "$s"; then upp=$((upp + 1)); else upf=$((upf + 1)); fi
      fi
      if [ $need_hub = 1 ]; then
        hubn=$((hubn + 1))
        if once "$hub_url" "$s"; then hubp=$((hubp + 1)); fi
      fi
    done
    u="$upp/$upn pass"
    h="$hubp/$hubn pass"
    if [ $upf = 0 ]; then
      note="STALE: the upstream passed every run; remove it from expected-failures.yml"
      errors+=("$s: listed in expected-failures.yml, but the upstream passed $upn runs out of $upn")
    elif [ $upp -gt 0 ] && [ $hubp = 0 ]; then
      note="HUB FAILS: the upstream passes it sometimes, the hub never did"
      errors+=("$s: the upstream passed $upp of $upn runs, the hub none of $hubn")
    else
      note="expected upstream failure (intermittent)"
    fi
  elif [ "$u" != pass ]; then
    note="UPSTREAM FAILS, not in expected-failures.yml"
    errors+=("$s: the upstream fails it but expected-failures.yml does not list it (add it with its reason)")
  elif [ "$h" != pass ]; then
    note="HUB FAILS"
    errors+=("$s: the upstream passes, the hub fails")
  fi
  rows+=("$(printf '%-32s %-14s %-14s %s' "$s" "$u" "$h" "$note")")
done
kill -0 "$hpid" 2>/dev/null || errors+=("sigil-hub exited during the run (see its log below)")

echo
echo "== MCP conformance 0.1.16 (server, active suite): mcp-go conformance server vs sigil-hub --remote"
printf '%-32s %-14s %-14s %s\n' scenario upstream hub note
printf '%s\n' "${rows[@]}"
echo

if [ ${#errors[@]} -gt 0 ]; then
  echo "conformance: FAILED:" >&2
  printf '  - %s\n' "${errors[@]}" >&2
  for s in $(printf '%s\n' "${!hub[@]}" | sort); do
    [ "${hub[$s]}" = pass ] && continue
    f=$(ls "$work"/hub-results/server-"$s"-*/checks.json 2>/dev/null | head -n1)
    if [ -n "$f" ] && [ -z "${listed[$s]:-}" ]; then
      echo "--- hub checks for $s ($f):" >&2
      cat "$f" >&2
    fi
  done
  echo "--- hub log (last 40 lines):" >&2
  tail -n 40 "$work/hub.log" >&2
  exit 1
fi
echo "conformance: the hub passes every scenario the upstream passes (${#up[@]} scenarios)"
