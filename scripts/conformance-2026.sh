#!/usr/bin/env bash
# scripts/conformance-2026.sh: run the MCP conformance suite's 2026-07-28
# requirement set (@modelcontextprotocol/conformance@0.2.0-alpha.12, server
# mode, --requirements 2026-07-28) against our fixture upstream directly, then
# through sigil-hub three ways, and compare.
#
# The upstream is internal/conformanceserver (mcp-go based), run with
# -modern-only so that the hub, which probes, speaks 2026-07-28 to it (a
# dual-era upstream is spoken to in 2025: docs/protocol.md#mcp-revisions);
# it passes every scored scenario on its own. The hub runs it as
#   single-wrap-remote  sigil-hub --remote <fixture>/mcp --server-id conformance \
#                                 --policy testdata/conformance/warranty.md --listen 127.0.0.1:0
#   single-wrap-stdio   sigil-hub --server-id conformance --policy ... --listen 127.0.0.1:0 \
#                                 -- <fixture> -stdio
#   hub                 sigil-hub --config hub.toml --overlay none --listen 127.0.0.1:0, where
#                       hub.toml has separator "_" and [servers.test] with url =
#                       a second fixture started with -strip test_: the hub exposes its
#                       "simple_text" as "test_simple_text", the name the suite calls,
#                       so every scenario applies through hub-mode naming and routing.
# The suite speaks Streamable HTTP only (--url), so each hub serves it with --listen.
#
# Only the scored scenarios count (the "Server scenarios" that
# `list --server --requirements 2026-07-28` prints); the unscored ones (tasks
# extension, pending) are run and summarized. A scenario passes when its
# checks.json holds no FAILURE (warnings are fine).
#
# Fails when:
# - the upstream fails a scored scenario (fix internal/conformanceserver);
# - a hub side fails a scored scenario not listed for that side in
#   testdata/conformance/expected-failures-2026.yml (no retries);
# - a listed scenario passes through that hub side (the entry is stale: remove it);
# - the file is malformed: an entry without a reason, an unknown section or
#   scenario, a duplicate.
#
# Needs: Go, npm (Node 22 comes from testdata/conformance), bash >= 4. Everything
# listens on 127.0.0.1. Takes about half a minute; each suite run is bounded.
# SIGIL_CONFORMANCE_KEEP=1 keeps the work folder (binaries, logs, checks.json).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cdir=$root/testdata/conformance
baseline=$cdir/expected-failures-2026.yml
suite_pin=0.2.0-alpha.12
sides=(single-wrap-remote single-wrap-stdio hub)

me=conformance-2026
# shellcheck source=scripts/conformance-common.sh
. "$root/scripts/conformance-common.sh"

# --- the suite and Node 22 (pinned by testdata/conformance/package-lock.json;
# the 2026 suite is installed under the alias conformance-2026)
suite=$cdir/node_modules/conformance-2026/dist/index.js
if [ ! -x "$cdir/node_modules/.bin/node" ] || [ ! -f "$suite" ] ||
  [ "$cdir/package-lock.json" -nt "$cdir/node_modules/.package-lock.json" ]; then
  echo "conformance-2026: installing the suites and Node 22 (npm ci in testdata/conformance)"
  (cd "$cdir" && npm ci --no-audit --no-fund --loglevel=error)
fi
node=$cdir/node_modules/.bin/node
node_major=$("$node" -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 22 ] || die "the suite needs Node >= 22, $node is $("$node" --version)"
suite_version=$("$node" -p "require('$cdir/node_modules/conformance-2026/package.json').version")
[ "$suite_version" = "$suite_pin" ] || die "expected @modelcontextprotocol/conformance $suite_pin as conformance-2026, found $suite_version"
timeout_cmd=()
if command -v timeout >/dev/null 2>&1; then
  timeout_cmd=(timeout 240)
fi

# --- the scored scenarios
declare -A scored=()
scored_order=()
while read -r s; do
  scored[$s]=1
  scored_order+=("$s")
done < <("$node" "$suite" list --server --requirements 2026-07-28 |
  awk '/^Server scenarios/ {on = 1; next} on && /^[[:space:]]*$/ {exit} on && /^[[:space:]]+- / {print $2}')
[ ${#scored_order[@]} -gt 0 ] || die "could not read the scored server scenarios from: $node $suite list --server --requirements 2026-07-28"

# --- the baseline file: one list per hub side, plus all-sides: for a scenario
# every side fails; "- scenario" entries, each with a reason in the comment
# line(s) right above it or an inline "# reason".
declare -A listed=() listed_all=()
declare -A is_side=([all-sides]=1)
for side in "${sides[@]}"; do is_side[$side]=1; done
section=
reason=0
lineno=0
while IFS= read -r line || [ -n "$line" ]; do
  lineno=$((lineno + 1))
  if [[ $line =~ ^[[:space:]]*$ ]]; then
    reason=0
  elif [[ $line =~ ^[[:space:]]*# ]]; then
    reason=1
  elif [[ $line =~ ^([A-Za-z0-9_-]+):[[:space:]]*(#.*)?$ ]]; then
    section=${BASH_REMATCH[1]}
    [ -n "${is_side[$section]:-}" ] || die "$baseline:$lineno: unknown list $section: (the lists are: all-sides ${sides[*]})"
    reason=0
  elif [[ $line =~ ^[[:space:]]+-[[:space:]]+([A-Za-z0-9_.-]+)[[:space:]]*(#.*)?$ ]]; then
    [ -n "$section" ] || die "$baseline:$lineno: entry outside a list"
    name=${BASH_REMATCH[1]}
    [ "$reason" = 1 ] || [ -n "${BASH_REMATCH[2]}" ] || die "$baseline:$lineno: $name has no reason (a comment line right above it, or an inline # reason)"
    [ -n "${scored[$name]:-}" ] || die "$baseline:$lineno: $name is not a scored server scenario of --requirements 2026-07-28"
    if [ "$section" = all-sides ]; then
      [ -z "${listed_all[$name]:-}" ] || die "$baseline:$lineno: $name is listed twice under all-sides:"
      listed_all[$name]=1
      for side in "${sides[@]}"; do
        [ -z "${listed[$side/$name]:-}" ] || die "$baseline:$lineno: $name is listed under all-sides: and under $side:"
        listed[$side/$name]=1
      done
    else
      [ -z "${listed[$section/$name]:-}" ] || die "$baseline:$lineno: $name is listed twice under $section: (or also under all-sides:)"
      listed[$section/$name]=1
    fi
    reason=0
  else
    die "$baseline:$lineno: cannot read this line: $line"
  fi
done <"$baseline"

# --- build
echo "conformance-2026: building sigil-hub and the fixture upstream (internal/conformanceserver)"
go build -o "$work/sigil-hub" ./cmd/sigil-hub
go build -o "$work/fixture" ./internal/conformanceserver

# Processes run with a clean environment and their own HOME and working
# folder: no SIGIL_* variable, user overlay, pin store or sigil.config.json
# of the caller changes what is tested.
clean_env=(env -i "PATH=$PATH" "HOME=$work/home" "TMPDIR=${TMPDIR:-/tmp}")
mkdir -p "$work/home"

# start_fixture NAME ARGS...: start the fixture on a free loopback port; sets
# fixture_url.
start_fixture() {
  local name=$1 pid
  shift
  (cd "$work" && exec "${clean_env[@]}" "$work/fixture" -modern-only -addr 127.0.0.1:0 "$@" </dev/null >"$work/$name.log" 2>&1) &
  pid=$!
  pids+=("$pid")
  fixture_url=
  local deadline=$((SECONDS + 30))
  while [ $SECONDS -lt $deadline ] && kill -0 "$pid" 2>/dev/null; do
    fixture_url=$(sed -n 's/.*serving MCP at \(http:\/\/127\.0\.0\.1:[0-9]*\/mcp\).*/\1/p' "$work/$name.log" | head -n1)
    [ -n "$fixture_url" ] && return 0
    sleep 0.1
  done
  cat "$work/$name.log" >&2
  die "the fixture upstream ($name) did not start within 30 s"
}

# start_hub SIDE ARGS...: start sigil-hub on an ephemeral loopback port and
# wait until it serves with its upstream ready; sets hub_url[SIDE].
declare -A hub_url=() hub_pid=()
start_hub() {
  local side=$1 pid url=
  shift
  (cd "$work" && exec "${clean_env[@]}" "$work/sigil-hub" "$@" </dev/null >"$work/$side.stdout" 2>"$work/$side.log") &
  pid=$!
  pids+=("$pid")
  hub_pid[$side]=$pid
  local deadline=$((SECONDS + 30))
  while [ $SECONDS -lt $deadline ] && kill -0 "$pid" 2>/dev/null; do
    if [ -z "$url" ]; then
      url=$(sed -n 's/.*serving MCP over Streamable HTTP.* url=\(http:\/\/127\.0\.0\.1:[0-9]*\/mcp\).*/\1/p' "$work/$side.log" | head -n1)
    fi
    if [ -n "$url" ] && grep -q 'upstream ready' "$work/$side.log"; then
      hub_url[$side]=$url
      return 0
    fi
    sleep 0.1
  done
  cat "$work/$side.log" >&2
  die "sigil-hub ($side) did not start serving with its upstream ready within 30 s"
}

start_fixture upstream
upstream_url=$fixture_url
start_fixture upstream-stripped -strip test_
stripped_url=$fixture_url
echo "conformance-2026: upstream at $upstream_url (and $stripped_url with -strip test_, for hub mode)"

policy=$cdir/warranty.md
start_hub single-wrap-remote --remote "$upstream_url" --server-id conformance --policy "$policy" --listen 127.0.0.1:0
start_hub single-wrap-stdio --server-id conformance --policy "$policy" --listen 127.0.0.1:0 -- "$work/fixture" -modern-only -stdio
cat >"$work/hub.toml" <<EOF
# sigil-hub in hub mode for scripts/conformance-2026.sh: one remote upstream
# named "test" with separator "_", so the fixture's "simple_text" (served with
# -strip test_) is exposed as "test_simple_text".
policy = "$policy"
separator = "_"

[servers.test]
url = "$stripped_url"
server_id = "conformance"
EOF
start_hub hub --config "$work/hub.toml" --overlay none --listen 127.0.0.1:0
for side in "${sides[@]}"; do
  echo "conformance-2026: $side at ${hub_url[$side]}"
done

# run_suite URL OUTDIR LOG: run the 2026-07-28 requirement set. The suite's own
# exit code only says whether something failed; the results are read from OUTDIR.
run_suite() {
  "${timeout_cmd[@]}" "$node" "$suite" server --url "$1" --requirements 2026-07-28 --timeout 15000 -o "$2" >"$3" 2>&1 || true
}


# failed_checks FILE: one line per FAILURE check of a checks.json.
failed_checks() {
  "$node" -e '
const checks = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
for (const c of checks.filter((c) => c.status === "FAILURE").slice(0, 5))
  console.log("    " + c.id + ": " + String(c.errorMessage || "").slice(0, 240));' "$1" || true
}

declare -A res=()
echo "conformance-2026: suite against the upstream"
run_suite "$upstream_url" "$work/upstream-results" "$work/upstream-suite.log"
while read -r s r; do res[upstream/$s]=$r; done < <(results "$work/upstream-results")
for side in "${sides[@]}"; do
  echo "conformance-2026: suite against $side"
  run_suite "${hub_url[$side]}" "$work/$side-results" "$work/$side-suite.log"
  while read -r s r; do res[$side/$s]=$r; done < <(results "$work/$side-results")
done

errors=()
rows=()
declare -A passed=()
for s in "${scored_order[@]}"; do
  u=${res[upstream/$s]:-missing}
  row=$(printf '%-46s %-8s' "$s" "$u")
  notes=()
  failing=()
  expected=()
  stale=()
  if [ "$u" != pass ]; then
    notes+=("UPSTREAM FAILS")
    errors+=("$s: the fixture upstream fails it ($u): fix internal/conformanceserver (see $work/upstream-results)")
  else
    passed[upstream]=$((${passed[upstream]:-0} + 1))
  fi
  for side in "${sides[@]}"; do
    h=${res[$side/$s]:-missing}
    if [ "$h" = pass ]; then passed[$side]=$((${passed[$side]:-0} + 1)); fi
    row+=$(printf ' %-8s' "$h")
    if [ -n "${listed[$side/$s]:-}" ]; then
      if [ "$h" = pass ]; then
        stale+=("$side")
        [ -n "${listed_all[$s]:-}" ] ||
          errors+=("$s: listed under $side: in expected-failures-2026.yml, but passes through $side: remove the entry")
      else
        expected+=("$side")
      fi
    elif [ "$u" = pass ] && [ "$h" != pass ]; then
      failing+=("$side")
      errors+=("$s: the upstream passes, $side fails, and expected-failures-2026.yml does not list it (under $side: or all-sides:)")
    fi
  done
  [ ${#failing[@]} -eq 0 ] || notes+=("HUB FAILS: ${failing[*]}")
  if [ ${#stale[@]} -gt 0 ]; then
    notes+=("STALE: ${stale[*]}")
    if [ -n "${listed_all[$s]:-}" ] && [ ${#stale[@]} -eq ${#sides[@]} ]; then
      errors+=("$s: listed under all-sides: in expected-failures-2026.yml, but passes through every side: remove the entry")
    elif [ -n "${listed_all[$s]:-}" ]; then
      errors+=("$s: listed under all-sides: in expected-failures-2026.yml, but passes through ${stale[*]}: list it only under the sides that still fail (${expected[*]})")
    fi
  fi
  if [ ${#expected[@]} -eq ${#sides[@]} ]; then
    notes+=("listed")
  elif [ ${#expected[@]} -gt 0 ]; then
    notes+=("listed: ${expected[*]}")
  fi
  rows+=("$row ${notes[*]:-}")
done
for side in "${sides[@]}"; do
  kill -0 "${hub_pid[$side]}" 2>/dev/null || errors+=("sigil-hub ($side) exited during the run (see $side.log)")
done

unscored=()
while read -r s r; do
  [ -n "${scored[$s]:-}" ] || unscored+=("$s=$r")
done < <(results "$work/upstream-results")

echo
echo "== MCP conformance $suite_pin, --requirements 2026-07-28 (server): fixture upstream vs sigil-hub"
printf '%-46s %-8s %-8s %-8s %-8s %s\n' scenario upstream sw-remot sw-stdio hub note
printf '%s\n' "${rows[@]}"
n=${#scored_order[@]}
printf 'scored scenarios passed: upstream %d/%d' "${passed[upstream]:-0}" "$n"
for side in "${sides[@]}"; do printf ', %s %d/%d' "$side" "${passed[$side]:-0}" "$n"; done
echo
echo "unscored (not judged), upstream: ${unscored[*]:-none}"
echo

if [ ${#errors[@]} -gt 0 ]; then
  echo "conformance-2026: FAILED:" >&2
  printf '  - %s\n' "${errors[@]}" >&2
  for side in "${sides[@]}"; do
    for s in "${scored_order[@]}"; do
      [ "${res[$side/$s]:-}" = pass ] && continue
      [ -n "${listed[$side/$s]:-}" ] && continue
      [ "${res[upstream/$s]:-}" = pass ] || continue
      f=$(ls "$work/$side-results"/server-"$s"-*/checks.json 2>/dev/null | head -n1)
      echo "--- $side, $s: ${f:-no checks.json (see $side-suite.log)}" >&2
      if [ -n "$f" ]; then failed_checks "$f" >&2; fi
    done
    echo "--- $side log (last 20 lines):" >&2
    tail -n 20 "$work/$side.log" >&2
  done
  exit 1
fi
echo "conformance-2026: each hub side passes every scored scenario the upstream passes, except those listed in expected-failures-2026.yml ($n scored scenarios)"
