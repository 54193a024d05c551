#!/usr/bin/env bash
# make compose-test: deploy/compose.yaml for real on this machine, with the host-network
# override: build the images, bring the stack up in health order, push a model through one
# metadata/artifact replica pair with the CLI, pull it through the other pair, compare the
# bytes, stop one MinIO node and pull again, and take the stack down with its volumes (KEEP=1
# leaves it running).
#
# Health order by hand: podman-compose enforces `condition: service_healthy` only on podman
# >= 4.6 (it needs `podman wait --condition=healthy`), and without systemd podman runs no health
# checks on its own, so this script starts the stack in the compose file's dependency order and
# runs each container's HEALTHCHECK (`podman healthcheck run`) until it passes.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
podman=${PODMAN:-$repo/deploy/podman/podman.sh}
python=${PYTHON:-$repo/.venv/bin/python}
bin=$(dirname "$python")
compose=("$bin/podman-compose" --podman-path "$podman"
  -f deploy/compose.yaml -f deploy/compose.host-network.yaml)
started=$(date +%s)
say() { echo "compose-test [$(( $(date +%s) - started ))s]: $*"; }

secrets=$(deploy/compose-secrets.sh)
PODMAN=$podman PYTHON=$python deploy/image/build.sh >/dev/null
PODMAN=$podman PYTHON=$python deploy/image/build-compose-images.sh >/dev/null
say "images ready"

container_of() {  # service -> its container's name
  "$podman" ps --all --filter "label=io.podman.compose.project=modelregistry" \
    --filter "label=com.docker.compose.service=$1" --format '{{.Names}}' | head -1
}
wait_healthy() {  # service... : run each one's health check until it passes (90 s each)
  for service in "$@"; do
    name=$(container_of "$service")
    deadline=$(( $(date +%s) + 90 ))
    until "$podman" healthcheck run "$name" >/dev/null 2>&1; do
      if [ "$(date +%s)" -gt "$deadline" ]; then
        say "$service ($name) not healthy after 90 s; its log:"
        "$podman" logs --tail 30 "$name" >&2 || true
        return 1
      fi
      sleep 1
    done
    say "$service healthy"
  done
}
down() {
  if [ "${KEEP:-}" = 1 ]; then say "KEEP=1: left running"; return; fi
  "${compose[@]}" down -v >/dev/null 2>&1 || true
  say "down (volumes removed)"
}
trap down EXIT

"${compose[@]}" up -d postgres minio1 minio2 minio3 minio4 >/dev/null 2>&1
wait_healthy postgres minio1 minio2 minio3 minio4
"${compose[@]}" up -d metadata-1 metadata-2 >/dev/null 2>&1
wait_healthy metadata-1 metadata-2
"${compose[@]}" up -d artifacts-1 artifacts-2 >/dev/null 2>&1
wait_healthy artifacts-1 artifacts-2

work=$(mktemp -d)
trap 'rm -rf "$work"; down' EXIT
mkdir -p "$work/model"
head -c 5000000 /dev/urandom >"$work/model/weights.bin"
echo '{"layers": 2}' >"$work/model/config.json"
token=$(cat "$secrets/admin-token")
cli() {  # pair(1|2) args...
  local pair=$1; shift
  # The token through the environment: a command line is visible to everyone in `ps`.
  MODELREGISTRY_TOKEN=$token "$bin/modelregistry" --url "127.0.0.1:1505$pair" \
    --artifact-url "127.0.0.1:1506$pair" --cache-dir "$work/cache$pair" "$@"
}
cli 1 push "$work/model" --model compose-demo --no-lineage --alias staging
say "pushed through metadata-1 + artifacts-1"
cli 2 pull compose-demo@staging --dest "$work/pulled" >/dev/null
cmp "$work/model/weights.bin" "$work/pulled/weights.bin"
cmp "$work/model/config.json" "$work/pulled/config.json"
say "pulled through metadata-2 + artifacts-2: bytes identical"
# One erasure set of four drives keeps reading with a node gone.
# (podman 4.3 logs a harmless error about systemd health-check timers here: none exist.)
"$podman" stop --time 5 "$(container_of minio4)" >/dev/null 2>&1
cli 1 --cache-dir "$work/cache3" pull compose-demo@staging --dest "$work/pulled-degraded" >/dev/null
cmp "$work/model/weights.bin" "$work/pulled-degraded/weights.bin"
say "minio4 stopped: pulled again through metadata-1 + artifacts-1, bytes identical"
"$podman" ps --filter "label=io.podman.compose.project=modelregistry" \
  --format '{{.Names}}  {{.Status}}'
