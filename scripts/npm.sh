#!/usr/bin/env bash
# npm.sh builds the npm packages of sigil-hub: one package per platform
# (sigil-hub-<os>-<arch>, holding the Go binary, with "os" and "cpu" set so
# npm installs only the matching one) and the package users install,
# sigil-hub, whose launcher (npm/sigil-hub/bin/sigil-hub.js) runs that
# binary with stdio, signals and exit status passed through. Each is packed
# with `npm pack` into $OUT (default dist/npm), ready for `npm publish`.
#
# Usage: scripts/npm.sh            (make npm)
# Environment: VERSION (default: the version in cmd/sigil-hub), OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${VERSION:-$(sed -n 's/^const version = "\(.*\)"$/\1/p' cmd/sigil-hub/run.go)}
OUT=${OUT:-dist/npm}
rm -rf "$OUT" && mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# platform list: npm os/cpu, Go GOOS/GOARCH, package suffix.
platforms="linux:x64:linux:amd64:linux-x64
linux:arm64:linux:arm64:linux-arm64
darwin:x64:darwin:amd64:darwin-x64
darwin:arm64:darwin:arm64:darwin-arm64
win32:x64:windows:amd64:windows-x64"

optional=""
while IFS=: read -r npmos npmcpu goos goarch suffix; do
	name="sigil-hub-$suffix"
	dir="$OUT/stage/$name"
	exe=sigil-hub
	if [ "$goos" = windows ]; then exe=sigil-hub.exe; fi
	echo "npm: building $name ($goos/$goarch)" >&2
	mkdir -p "$dir/bin"
	CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath -ldflags "-s -w" -o "$dir/bin/$exe" ./cmd/sigil-hub
	cat >"$dir/package.json" <<JSON
{
  "name": "$name",
  "version": "$VERSION",
  "description": "The sigil-hub binary for $goos/$goarch (installed by the sigil-hub package).",
  "os": ["$npmos"],
  "cpu": ["$npmcpu"],
  "files": ["bin/"],
  "preferUnplugged": true
}
JSON
	optional="$optional${optional:+,}
    \"$name\": \"$VERSION\""
	(cd "$OUT" && npm pack --silent "$dir" >/dev/null)
done <<<"$platforms"

main="$OUT/stage/sigil-hub"
mkdir -p "$main/bin"
cp npm/sigil-hub/bin/sigil-hub.js "$main/bin/"
cp README.md "$main/"
cat >"$main/package.json" <<JSON
{
  "name": "sigil-hub",
  "version": "$VERSION",
  "description": "One MCP server in front of many, with every tool call authorized before it fires.",
  "bin": { "sigil-hub": "bin/sigil-hub.js" },
  "files": ["bin/", "README.md"],
  "engines": { "node": ">=18" },
  "optionalDependencies": {$optional
  }
}
JSON
(cd "$OUT" && npm pack --silent "$main" >/dev/null)
rm -rf "$OUT/stage"
ls "$OUT"/*.tgz
