# scripts/conformance-common.sh: sourced by scripts/conformance.sh and
# scripts/conformance-2026.sh (set "me" first: the name their messages and
# work folder carry). It defines die, makes the work folder $work, and
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
