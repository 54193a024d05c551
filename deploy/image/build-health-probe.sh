#!/usr/bin/env bash
# Builds grpc_health_probe at the pinned version into .tools/bin (once) and prints its path.
# The image's HEALTHCHECK runs it, and the tests run the same binary from the host. A static
# build (CGO_ENABLED=0) runs on any base image.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# The newest release on the Go module proxy when pinned (`go list -m -versions` lists them).
version=v0.4.63
bin=$repo/.tools/bin
probe=$bin/grpc_health_probe
stamp=$probe.version
if [ ! -x "$probe" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$version" ]; then
  command -v go >/dev/null || { echo "build-health-probe.sh: needs Go on PATH" >&2; exit 1; }
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  # Outside any Go module (cwd), so the repository cannot influence the build.
  (cd "$scratch" && GOBIN="$scratch" CGO_ENABLED=0 \
    go install "github.com/grpc-ecosystem/grpc-health-probe@$version")
  mkdir -p "$bin"
  mv "$scratch/grpc-health-probe" "$probe"
  echo "$version" >"$stamp"
fi
echo "$probe"
