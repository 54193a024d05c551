#!/usr/bin/env bash
# Builds the image's base from Debian packages and loads it into podman as BASE_IMAGE.
#
# No image registry is reachable on the project's build machines, but Debian's package mirrors
# are (DESIGN.md, "Known pitfalls"), so the base is a Debian bookworm root filesystem made by
# mmdebstrap (minbase variant: essential packages only, no compiler) with Debian's Python 3.11.
# The tarball is kept in .tools/image and reused; delete it (or pass --refresh) to rebuild it
# with the newest package versions. Installs mmdebstrap first if it is missing.
#
#   deploy/image/build-base.sh [--refresh]
#   env: BASE_IMAGE (default localhost/modelregistry-base:bookworm), PODMAN (default
#        deploy/podman/podman.sh), DEBIAN_SUITE (default bookworm)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
suite=${DEBIAN_SUITE:-bookworm}
image=${BASE_IMAGE:-localhost/modelregistry-base:$suite}
podman=${PODMAN:-$repo/deploy/podman/podman.sh}
tarball=$repo/.tools/image/base-$suite.tar
# python3.11-venv brings ensurepip (the build stage makes a venv); ca-certificates lets the
# server reach S3 or an OTLP collector over TLS with the system's roots.
packages=python3.11,python3.11-venv,ca-certificates

if [ "${1:-}" = "--refresh" ]; then rm -f "$tarball"; fi

if [ ! -s "$tarball" ]; then
  if ! command -v mmdebstrap >/dev/null; then
    echo "build-base.sh: installing Debian's mmdebstrap" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends mmdebstrap \
      || { apt-get update && apt-get install -y --no-install-recommends mmdebstrap; }
  fi
  mkdir -p "$(dirname "$tarball")"
  # Documentation, man pages and translations are dead weight in a server image.
  mmdebstrap --variant=minbase --format=tar --include="$packages" \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    "$suite" "$tarball.partial"
  mv "$tarball.partial" "$tarball"
fi

if [ "${1:-}" = "--refresh" ] || ! "$podman" image exists "$image"; then
  "$podman" import --change 'CMD ["/bin/bash"]' \
    --message "Debian $suite minbase + $packages (deploy/image/build-base.sh)" \
    "$tarball" "$image" >/dev/null
fi
echo "$image"
