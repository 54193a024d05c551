#!/usr/bin/env bash
# Builds the local PostgreSQL and MinIO images deploy/compose.host-network.yaml runs (where no
# image registry is reachable), on the same Debian base as the registry image, and prints their
# names. Kept when they exist; --force rebuilds them.
#
#   env: POSTGRES_IMAGE (default localhost/modelregistry-postgres:15),
#        MINIO_IMAGE (default localhost/modelregistry-minio:dev), PODMAN, PYTHON as build.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
podman=${PODMAN:-$repo/deploy/podman/podman.sh}
python=${PYTHON:-$repo/.venv/bin/python}
base=${IMAGE_BASE:-localhost/modelregistry-base:bookworm}
postgres=${POSTGRES_IMAGE:-localhost/modelregistry-postgres:15}
minio=${MINIO_IMAGE:-localhost/modelregistry-minio:dev}
force=${1:-}

BASE_IMAGE=$base "$here/build-base.sh" >/dev/null
format=()
case "$(basename "$podman")" in docker*) ;; *) format=(--format docker) ;; esac

if [ "$force" = --force ] || ! "$podman" image exists "$postgres"; then
  "$podman" build "${format[@]}" --network host --build-arg BASE="$base" --tag "$postgres" \
    "$here/postgres" >&2
fi
if [ "$force" = --force ] || ! "$podman" image exists "$minio"; then
  # The pinned MinIO the tests use (built once with `go install` into .tools/bin).
  binary=$(cd "$repo" && "$python" -m tests.support.minio)
  context=$repo/.tools/image/minio-context
  rm -rf "$context" && mkdir -p "$context"
  cp "$here/minio/Containerfile" "$context/" && cp "$binary" "$context/minio"
  "$podman" build "${format[@]}" --network host --build-arg BASE="$base" --tag "$minio" \
    "$context" >&2
  rm -rf "$context"
fi
echo "$postgres"
echo "$minio"
