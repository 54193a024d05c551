#!/usr/bin/env bash
# Writes random secrets for deploy/compose.yaml into deploy/secrets/ (git-ignored), once: files
# that exist are kept, so a re-run never locks you out of a running stack.
set -euo pipefail
dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/secrets
mkdir -p "$dir"
chmod 700 "$dir"  # the folder guards the files; they must be readable by the containers' users
random() { head -c 32 /dev/urandom | base64 | tr -d '/+=' | cut -c1-32; }
write() {  # name value
  [ -s "$dir/$1" ] || { printf '%s\n' "$2" >"$dir/$1"; chmod 644 "$dir/$1"; }
}
write postgres-password "$(random)"
pw=$(cat "$dir/postgres-password")
write database-url "postgresql://registry:$pw@postgres:5432/registry"
write database-url-host "postgresql://registry:$pw@127.0.0.1:15432/registry"
write minio-root-user "registry-$(random | cut -c1-8)"
write minio-root-password "$(random)"
# The registry's token format: mr1_<id>_<secret> (what `modelregistry token create` prints).
write admin-token "mr1_$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
echo "$dir"
