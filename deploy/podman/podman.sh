#!/usr/bin/env bash
# podman as this repository runs it: its own settings (containers.conf beside this script) and
# its own storage under .tools/podman (vfs driver; a storage.conf written there), so the host
# needs no hand setup and no other podman user on the machine is affected. Installs Debian's
# podman, runc and catatonit first if missing.
#
#   deploy/podman/podman.sh images
#   podman-compose --podman-path deploy/podman/podman.sh -f deploy/compose.yaml up -d
#
# Every argument goes to podman. MODELREGISTRY_PODMAN_ROOT moves the storage elsewhere.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
state=${MODELREGISTRY_PODMAN_ROOT:-$repo/.tools/podman}

# catatonit is the init of a pod's infra container (podman-compose puts a project in a pod,
# `podman kube play` too); Debian's podman only recommends it.
missing() { ! command -v podman >/dev/null || ! command -v runc >/dev/null \
  || { [ ! -x /usr/libexec/podman/catatonit ] && ! command -v catatonit >/dev/null; }; }
if missing; then
  # Like tests/support/browser.py does for Chromium: a fresh machine gets Debian's packages,
  # once, under a lock so parallel callers wait for one install.
  mkdir -p "$repo/.tools"
  (
    flock 9
    if missing; then
      echo "podman.sh: installing Debian's podman, runc and catatonit" >&2
      export DEBIAN_FRONTEND=noninteractive
      packages=(podman runc catatonit)
      apt-get install -y --no-install-recommends "${packages[@]}" >&2 \
        || { apt-get update >&2 && apt-get install -y --no-install-recommends "${packages[@]}" >&2; }
    fi
  ) 9>"$repo/.tools/podman.install.lock"
fi

# The run directory holds locks and state that must not outlive a reboot: keep it on tmpfs
# (/run), one per checkout (a hash of its path), so two checkouts never share state.
key=$(printf '%s' "$state" | sha1sum | cut -c1-12)
run=${XDG_RUNTIME_DIR:-/run}/modelregistry-podman-$key
mkdir -p "$state/storage" "$run/storage" "$run/libpod"

# storage.conf needs absolute paths, so it is written here rather than kept in the repository.
# vfs: overlay needs kernel support the build sandboxes do not give (DESIGN.md, "Known pitfalls").
# Written aside and renamed: concurrent calls must never read a half-written file.
printf '[storage]\ndriver = "vfs"\ngraphroot = "%s"\nrunroot = "%s"\n' \
  "$state/storage" "$run/storage" >"$state/storage.conf.$$"
mv -f "$state/storage.conf.$$" "$state/storage.conf"
export CONTAINERS_CONF="$here/containers.conf"
export CONTAINERS_STORAGE_CONF="$state/storage.conf"
exec podman --root "$state/storage" --runroot "$run/storage" --tmpdir "$run/libpod" \
  --storage-driver vfs --runtime runc --cgroup-manager cgroupfs "$@"
