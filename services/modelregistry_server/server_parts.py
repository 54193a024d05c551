"""Pieces of the composition root kept out of ``server.py`` (which is at its size limit).

The model scanner's wiring, the OIDC verifier, the HTTP face, and how the log names the
transport.
"""

from __future__ import annotations

import logging

from modelregistry.access.v1 import access_service_pb2
from modelregistry.artifact.v1 import artifact_service_pb2
from modelregistry.metadata.v1 import metadata_service_pb2
from modelregistry_server.access.adapters.jwks import (
    JwksError,
    JwksFile,
    JwksSource,
    JwksUrl,
    SigningKeys,
)
from modelregistry_server.access.adapters.jwt_verifier import PyJwtVerifier
from modelregistry_server.access.app.oidc import OidcAuthenticator
from modelregistry_server.access.domain.oidc import ClaimMapping
from modelregistry_server.artifacts.app.ports import BlobStore
from modelregistry_server.common.adapters.db import Database
from modelregistry_server.common.config import ConfigError, ServerConfig
from modelregistry_server.metadata.adapters.postgres.scans import PostgresScanStore
from modelregistry_server.metadata.app.resolve_cache import ResolveCache
from modelregistry_server.metadata.app.scan_ports import BlobReader
from modelregistry_server.metadata.app.scanning import ModelScanner
from modelregistry_server.web.face import WebContext, WebFace, build_app
from modelregistry_server.web.gateway import Gateway
from modelregistry_server.web.installers import installers

__all__ = ["ModelScanner", "build_oidc", "build_scanner", "start_web_face", "transport_security"]
_log = logging.getLogger(__name__)
_SERVICES = {
    file.DESCRIPTOR.services_by_name[name].full_name: file.DESCRIPTOR.services_by_name[name]
    for file, name in (
        (metadata_service_pb2, "MetadataService"),
        (artifact_service_pb2, "ArtifactService"),
        (access_service_pb2, "AccessService"),
    )
}


def build_scanner(
    config: ServerConfig, database: Database, reader: BlobReader, cache: ResolveCache
) -> ModelScanner | None:
    """The started background scanner of committed versions, or None with --scan-models off.

    It starts at once: its reads wait for the artifact service to listen (this process's own
    port, bound only after the metadata service is built).
    """
    if not config.limits.scan_models:
        return None
    scanner = ModelScanner(PostgresScanStore(database), reader, on_scanned=cache.invalidate_model)
    scanner.start()
    return scanner


def transport_security(config: ServerConfig) -> str:
    """How the server's port is secured, for the start-up log line."""
    if config.tls is not None:
        return "mutual TLS" if config.tls.mutual else "TLS"
    return "plaintext, --insecure" if config.insecure else "plaintext"


async def build_oidc(config: ServerConfig) -> OidcAuthenticator | None:
    """The verifier of the configured issuer's JWTs, its keys loaded once now.

    Raises:
        ConfigError: The JWKS file cannot be read or holds no usable key (a JWKS URL
            that fails now is only logged: it is tried again on the first JWT).
    """
    oidc = config.oidc
    if oidc is None:
        return None
    source: JwksSource
    if oidc.jwks_url is not None:
        source = JwksUrl(oidc.jwks_url)
    else:
        assert oidc.jwks_file is not None  # the configuration requires one of them
        source = JwksFile(oidc.jwks_file)
    keys = SigningKeys(source)
    try:
        await keys.load()
    except JwksError as exc:
        if oidc.jwks_url is None:
            raise ConfigError(f"--oidc-jwks-file: {exc}") from None
        _log.warning("%s; tried again when the first JWT comes", exc)
    verifier = PyJwtVerifier(keys, oidc.issuer, oidc.audiences, oidc.algorithms, oidc.leeway_s)
    mapping = ClaimMapping(oidc.principal_claim, oidc.groups_claim, oidc.principal_prefix)
    _log.info("accepting JWTs of OIDC issuer %s (keys: %s)", oidc.issuer, keys.description)
    return OidcAuthenticator(verifier, mapping, oidc.issuer)


async def start_web_face(
    config: ServerConfig, target: str, served: list[str], store: BlobStore | None
) -> WebFace | None:
    """The started HTTP face for the services in ``served``, or None when it is off.

    Args:
        config: The server's configuration (``config.http``, and TLS shared with gRPC).
        target: Where this process's gRPC server answers in-process calls.
        served: Full names of the services this process serves.
        store: The blob store when this process serves the ArtifactService.
    """
    if config.http is None:
        return None
    # The certificate (and client CA) the configuration loaded and checked for the gRPC port.
    ssl_context = config.tls.server_context if config.tls is not None else None
    context = WebContext(
        gateway=Gateway(target),
        services=[_SERVICES[name] for name in served if name in _SERVICES],
        store=store,
        tls=ssl_context is not None,
        cors_origins=config.http.cors_origins,
    )
    face = WebFace(build_app(context, installers()), context.files)
    try:
        await face.start(config.http.listen, ssl_context)
    except OSError as exc:
        await context.gateway.close()
        raise ConfigError(f"--http-listen {config.http.listen}: {exc.strerror or exc}") from None
    face.on_stop(context.gateway.close)
    _log.info(
        "web UI and JSON API: %s (sign in with a token, e.g. the one in %s)",
        face.url,
        config.admin_token_path,
    )
    return face
