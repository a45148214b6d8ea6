#!/usr/bin/env bash
# dist.sh builds the release archives: sigil-hub_<version>_<os>_<arch>.tar.gz
# for linux amd64/arm64, darwin amd64/arm64 and windows amd64 (each holding
# the binary and README.md), and SHA256SUMS over them, in $OUT (default
# dist/release).
#
# Usage: scripts/dist.sh            (make dist)
# Environment: VERSION (default: the version in cmd/sigil-hub), OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${VERSION:-$(sed -n 's/^const version = "\(.*\)"$/\1/p' cmd/sigil-hub/run.go)}
OUT=${OUT:-dist/release}
rm -rf "$OUT" && mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

for target in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64; do
	goos=${target%/*} goarch=${target#*/}
	exe=sigil-hub
	if [ "$goos" = windows ]; then exe=sigil-hub.exe; fi
	name="sigil-hub_${VERSION}_${goos}_${goarch}"
	stage="$OUT/stage/$name"
	echo "dist: building $name" >&2
	mkdir -p "$stage"
	CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath -ldflags "-s -w" -o "$stage/$exe" ./cmd/sigil-hub
	cp README.md "$stage/"
	tar -C "$OUT/stage" -czf "$OUT/$name.tar.gz" "$name"
done
rm -rf "$OUT/stage"
(cd "$OUT" && sha256sum ./*.tar.gz | sed 's| \./| |' >SHA256SUMS)
cat "$OUT/SHA256SUMS"
