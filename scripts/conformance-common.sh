# scripts/conformance-common.sh: sourced by scripts/conformance.sh and
# scripts/conformance-2026.sh (set "me" first: the name their messages and
# work folder carry). It defines die and results, makes the work folder $work, and
# stops every process whose pid is added to pids when the script exits
# (the folder is removed unless SIGIL_CONFORMANCE_KEEP=1).

die() {
  echo "$me: $*" >&2
  exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/sigil-$me.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  if [ "${SIGIL_CONFORMANCE_KEEP:-}" = 1 ]; then
    echo "$me: work folder kept: $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# results OUTDIR: print "scenario pass|FAIL" for each scenario run into
# OUTDIR ($node must be set). A scenario passes when its checks.json holds no
# FAILURE check (warnings and info are fine); a missing or unreadable file is
# a failure.
results() {
  "$node" -e '
const fs = require("fs"), path = require("path");
const dir = process.argv[1];
let entries = [];
try { entries = fs.readdirSync(dir).sort(); } catch {}
for (const d of entries) {
  const m = /^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/.exec(d);
  if (!m) continue;
  let ok = false;
  try {
    const checks = JSON.parse(fs.readFileSync(path.join(dir, d, "checks.json"), "utf8"));
    ok = Array.isArray(checks) && !checks.some((c) => c.status === "FAILURE");
  } catch {}
  console.log(m[1] + " " + (ok ? "pass" : "FAIL"));
}' "$1"
}
