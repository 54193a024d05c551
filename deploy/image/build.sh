#!/usr/bin/env bash
# `make image`: builds the modelregistry image (deploy/Containerfile) and prints its name.
#
#   IMAGE       the image to build (default localhost/modelregistry:dev)
#   IMAGE_BASE  the Containerfile's BASE (default localhost/modelregistry-base:bookworm, which
#               deploy/image/build-base.sh builds from Debian packages when it is missing);
#               e.g. python:3.11-slim where a registry is reachable
#   PODMAN      the engine (default deploy/podman/podman.sh; `docker` works too)
#   PYTHON      a Python with pip, to build the two wheels (default .venv/bin/python)
#
# An image that is current (built from the same files) is kept; --force rebuilds it anyway.
#
# What goes into the build context (.tools/image/context): the wheels of this checkout, the
# pinned requirements from the two pyproject.toml files, grpc_health_probe and the health-check
# script. Nothing else of the repository (no .venv, no .tools, no tests) reaches the image.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
image=${IMAGE:-localhost/modelregistry:dev}
base=${IMAGE_BASE:-localhost/modelregistry-base:bookworm}
podman=${PODMAN:-$repo/deploy/podman/podman.sh}
python=${PYTHON:-$repo/.venv/bin/python}
context=$repo/.tools/image/context
# Names the build stage of the last build (see the clean-up at the end).
build_cache=localhost/modelregistry-build:cache

# Everything the image is made of, hashed: an image labelled with the same hash is current and
# is not rebuilt, so `make test` (which depends on `make image`) pays nothing when nothing changed.
inputs=$(cd "$repo" && git ls-files -co --exclude-standard -- services clients/python \
  pyproject.toml deploy/Containerfile deploy/image/build.sh deploy/image/build-base.sh \
  deploy/image/build-health-probe.sh deploy/image/healthcheck.sh | LC_ALL=C sort | xargs sha256sum \
  | { cat; printf '%s\n' "$base"; } | sha256sum | cut -c1-16)
if [ "${1:-}" != "--force" ] && [ "$("$podman" image inspect --format \
    '{{index .Config.Labels "org.modelregistry.inputs"}}' "$image" 2>/dev/null)" = "$inputs" ]; then
  echo "$image"
  exit 0
fi

# One build at a time per checkout (make test, the tests' fallback and a developer may race), and
# the clean-up below must not remove what another build is using.
mkdir -p "$repo/.tools"
exec 9>"$repo/.tools/image.build.lock"
flock 9

case "$base" in
  localhost/modelregistry-base:*) BASE_IMAGE=$base "$here/build-base.sh" >/dev/null ;;
esac
probe=$("$here/build-health-probe.sh")

rm -rf "$context"
mkdir -p "$context/wheels"
"$python" -m pip wheel --quiet --disable-pip-version-check --no-deps \
  --wheel-dir "$context/wheels" "$repo/clients/python" "$repo"
# The runtime pins, in a file of their own so the dependency layer is cached until one changes.
"$python" - "$repo" >"$context/requirements.txt" <<'PY'
import sys, tomllib
from pathlib import Path
repo = Path(sys.argv[1])
for project in (repo / "pyproject.toml", repo / "clients/python/pyproject.toml"):
    for requirement in tomllib.loads(project.read_text())["project"]["dependencies"]:
        print(requirement)
PY
cp "$probe" "$here/healthcheck.sh" "$context/"

# HEALTHCHECK is a Docker image-format field; podman drops it from OCI images.
format=()
case "$(basename "$podman")" in docker*) ;; *) format=(--format docker) ;; esac
# The host's CA bundle (the one its own pip uses) lets pip in the build stage through a network
# that intercepts TLS; a build secret, so it never lands in a layer.
ca=${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
secret=()
if [ -s "$ca" ]; then secret=(--secret "id=pip-ca,src=$ca"); fi
# Host network: the build machines have no other (pip reaches the package index through it).
"$podman" build "${format[@]}" "${secret[@]}" --network host --build-arg BASE="$base" \
  --label "org.modelregistry.inputs=$inputs" --tag "$image" --file "$repo/deploy/Containerfile" "$context" >&2
# The vfs driver stores every layer as a full copy of the file system (about 350 MB here), so
# each rebuild would leave gigabytes of untagged images behind. Tag the build stage (all its
# steps are cached, so this takes seconds) to keep its dependency layer for the next build,
# then remove every untagged image: earlier builds of this image and of its build stage.
"$podman" build "${format[@]}" "${secret[@]}" --network host --build-arg BASE="$base" \
  --target build --tag "$build_cache" --file "$repo/deploy/Containerfile" "$context" >/dev/null
"$podman" image prune --force >/dev/null
echo "$image"
