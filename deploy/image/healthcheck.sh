#!/bin/sh
# The image's HEALTHCHECK: grpc_health_probe against this container's own server, on the port of
# MODELREGISTRY_LISTEN (the probe always dials loopback, which a 0.0.0.0 listener also serves).
# With MODELREGISTRY_TLS_CERT set the probe speaks TLS without checking the certificate's name:
# it asks whether this process serves, not who it is. A server that requires client
# certificates (MODELREGISTRY_TLS_CLIENT_CA) needs MODELREGISTRY_HEALTHCHECK_ARGS with the
# probe's -tls-client-cert and -tls-client-key.
listen=${MODELREGISTRY_LISTEN:-127.0.0.1:50051}
set -- -addr="127.0.0.1:${listen##*:}" -connect-timeout=2s -rpc-timeout=2s
if [ -n "${MODELREGISTRY_TLS_CERT:-}" ]; then
  set -- "$@" -tls -tls-no-verify
fi
# shellcheck disable=SC2086 # word splitting of the extra arguments is intended
exec grpc_health_probe "$@" ${MODELREGISTRY_HEALTHCHECK_ARGS:-}
