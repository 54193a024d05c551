"""Server configuration from flags and environment variables, validated at start-up.

Every flag has an environment variable (``MODELREGISTRY_<FLAG>``); a flag on the command line
wins. Problems are reported all at once, one plain sentence each, before anything starts.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from modelregistry_server.common.limits_config import (
    Limits,
    add_limits_flags,
    read_download_url_ttl,
    read_limits,
)
from modelregistry_server.common.metadata_link import add_metadata_service_flags
from modelregistry_server.common.oidc_config import OidcConfig, add_oidc_flags, read_oidc_config
from modelregistry_server.common.telemetry_config import (
    Exporter,
    MetricsConfig,
    read_metrics_config,
    read_trace_exporter,
)
from modelregistry_server.common.telemetry_config import add_telemetry_flags as _telemetry_flags
from modelregistry_server.common.web_config import HttpConfig, add_http_flags, read_http_config

ServiceSelection = Literal["all", "metadata", "artifacts"]
_ENV_PREFIX = "MODELREGISTRY_"
_TRUE = ("1", "true", "yes")


class ConfigError(ValueError):
    """The configuration is invalid; the message lists every problem."""


@dataclass(frozen=True)
class S3Config:
    """Where the S3 (MinIO) blob store lives."""

    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    secure: bool
    region: str


@dataclass(frozen=True)
class TlsConfig:
    """TLS on the gRPC port, as PEM bytes read (and checked) at start-up."""

    cert_chain: bytes
    private_key: bytes = field(repr=False)
    # With a client CA, every client must present a certificate that this CA signed (mTLS).
    client_ca: bytes | None = None
    # The same, loaded for Python's ssl (the HTTP port; gRPC takes the PEM bytes).
    server_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    @property
    def mutual(self) -> bool:
        """True when clients must present a certificate."""
        return self.client_ca is not None


@dataclass(frozen=True)
class ClientTlsConfig:
    """TLS for the metadata service's calls to a separate ArtifactService."""

    ca: bytes | None = None  # None: the system's trusted CAs
    cert_chain: bytes | None = None  # a client certificate, for an artifact service with mTLS
    private_key: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ServerConfig:
    """Everything the composition root needs to start the registry."""

    services: ServiceSelection
    listen: str
    data_dir: Path
    database_url: str | None
    s3: S3Config | None
    artifact_service_url: str | None
    otel_exporter: Exporter
    log_level: str
    shutdown_grace_s: float
    upload_session_ttl_s: float = 20 * 3600
    sweep_interval_s: float = 300
    upload_part_size_mib: int = 16
    upload_parts_in_flight: int = 2
    # The bootstrap admin token's file (default <data-dir>/admin-token) and the token the
    # metadata service presents to a separate ArtifactService.
    admin_token_file: Path | None = None
    artifact_service_token: str | None = None
    # JWTs of an OpenID Connect issuer accepted as credentials (None: OIDC is off).
    oidc: OidcConfig | None = None
    limits: Limits = field(default_factory=Limits)
    tls: TlsConfig | None = None
    insecure: bool = False
    artifact_service_tls: ClientTlsConfig | None = None
    download_url_ttl_s: int = 900
    # Whether CreateUploadSession may offer a presigned PUT straight to the S3 store.
    direct_uploads: bool = True
    # Where artifacts served alone ask which blobs a version holds (common/metadata_link.py).
    metadata_service_url: str | None = None
    metadata_service_token: str | None = None
    metadata_service_tls: ClientTlsConfig | None = None
    # The HTTP face (JSON API, file URLs, web UI); None when it is off.
    http: HttpConfig | None = None
    metrics: MetricsConfig | None = None  # None: no metrics exporter runs

    @property
    def admin_token_path(self) -> Path:
        """Where the bootstrap admin token is read from, or written to on first start."""
        return self.admin_token_file or self.data_dir / "admin-token"

    @property
    def embedded_database(self) -> bool:
        """True when the server runs its own PostgreSQL under ``data_dir``."""
        return self.database_url is None

    @property
    def blob_dir(self) -> Path:
        """The local-directory blob store's root (used when no S3 endpoint is set)."""
        return self.data_dir / "blobs"


def _add_credential_flags(serve: argparse.ArgumentParser) -> None:
    """The bootstrap admin token, how each service reaches the other served alone, and OIDC."""
    add_oidc_flags(serve)
    add_metadata_service_flags(serve)
    serve.add_argument(
        "--artifact-service-token",
        help="the bearer token the metadata service presents to a separate ArtifactService "
        "(create one with `modelregistry token create`); set it through "
        "MODELREGISTRY_ARTIFACT_SERVICE_TOKEN rather than on the command line",
    )
    serve.add_argument(
        "--admin-token-file",
        help="the bootstrap admin token: read at start and accepted as principal 'admin'; "
        "written (mode 0600) if missing (default <data-dir>/admin-token)",
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the ``serve`` argument parser (also used for ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="modelregistry-server",
        description=(
            "Run the modelregistry gRPC services. With no --database-url and no --s3-endpoint it "
            "runs on the embedded default: its own PostgreSQL and a local blob directory, both "
            "under --data-dir. Every flag can also be set as MODELREGISTRY_<FLAG> in the "
            "environment (e.g. MODELREGISTRY_DATABASE_URL)."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve",
        help="serve the registry",
        description="Serve MetadataService and ArtifactService on one port, or either alone.",
        epilog=(
            "Examples: `modelregistry-server serve` (embedded default); "
            "`MODELREGISTRY_DATABASE_URL=postgresql://… MODELREGISTRY_S3_ENDPOINT=minio:9000 "
            "MODELREGISTRY_S3_ACCESS_KEY=… MODELREGISTRY_S3_SECRET_KEY=… modelregistry-server "
            "serve --listen 0.0.0.0:50051 --tls-cert tls.crt --tls-key tls.key`. Pass secrets "
            "through the environment: command-line "
            "flags are visible to every user in `ps`."
        ),
    )
    serve.add_argument(
        "services",
        nargs="?",
        choices=["all", "metadata", "artifacts"],
        default="all",
        help="which services to serve (default: all)",
    )
    serve.add_argument(
        "--listen",
        help="host:port to listen on (default 127.0.0.1:50051); an address other than loopback "
        "needs --tls-cert and --tls-key, or --insecure",
    )
    serve.add_argument(
        "--data-dir",
        help="folder for embedded PostgreSQL and local blobs (default ./.modelregistry)",
    )
    serve.add_argument(
        "--database-url",
        help="postgresql://user:password@host:port/db of an existing PostgreSQL; "
        "omit to run the embedded one",
    )
    serve.add_argument("--s3-endpoint", help="host:port of MinIO/S3; omit for the local blob dir")
    serve.add_argument("--s3-access-key", help="S3 access key (required with --s3-endpoint)")
    serve.add_argument("--s3-secret-key", help="S3 secret key (required with --s3-endpoint)")
    serve.add_argument("--s3-bucket", help="bucket for blobs (default modelregistry)")
    serve.add_argument("--s3-region", help="S3 region (default us-east-1)")
    serve.add_argument(
        "--s3-secure", choices=["true", "false"], help="use TLS to reach S3 (default false)"
    )
    serve.add_argument(
        "--artifact-service-url",
        help="host:port of the ArtifactService when serving metadata alone",
    )
    _add_credential_flags(serve)
    _add_tls_flags(serve)
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    serve.add_argument(
        "--shutdown-grace",
        help="seconds in-flight calls may take to finish after SIGTERM (default 3)",
    )
    add_limits_flags(serve)
    add_http_flags(serve)
    _telemetry_flags(serve)
    return parser


def _add_tls_flags(serve: argparse.ArgumentParser) -> None:
    """TLS of the served port, and of the calls to a separate ArtifactService."""
    serve.add_argument("--tls-cert", help="PEM certificate chain: serve the port with TLS")
    serve.add_argument("--tls-key", help="PEM private key of --tls-cert (not encrypted)")
    serve.add_argument(
        "--tls-client-ca",
        help="PEM CA certificates: clients must present a certificate one of them signed "
        "(mutual TLS); the certificate's SAN or CN names the caller",
    )
    serve.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="allow plaintext on an address other than loopback (behind a TLS-terminating "
        "proxy or on a trusted network only)",
    )
    serve.add_argument(
        "--artifact-service-ca",
        help="PEM CA certificates that signed the ArtifactService's certificate: reach it with "
        "TLS (metadata alone)",
    )
    serve.add_argument(
        "--artifact-service-cert",
        help="PEM client certificate to present to an ArtifactService that requires mutual TLS",
    )
    serve.add_argument("--artifact-service-key", help="PEM private key of --artifact-service-cert")


class _Settings:
    """Reads settings: the flag if given, else ``MODELREGISTRY_<FLAG>``, else the default.

    Problems are collected in ``problems`` so that one error lists every bad setting.
    """

    def __init__(self, args: argparse.Namespace, env: Mapping[str, str]) -> None:
        self._args = args
        self._env = env
        self.problems: list[str] = []

    def get(self, flag: str, default: str | None = None) -> str | None:
        value = getattr(self._args, flag)
        if value is None:
            value = self._env.get(_ENV_PREFIX + flag.upper()) or None
        return value if value is not None else default

    def switch(self, flag: str) -> bool:
        """A ``store_true`` flag, or its variable set to ``1``, ``true`` or ``yes``."""
        if getattr(self._args, flag):
            return True
        return self._env.get(_ENV_PREFIX + flag.upper(), "").strip().lower() in _TRUE

    def pem(self, flag: str) -> bytes | None:
        """The bytes of the file the flag names, or None; a problem if it cannot be read."""
        path = self.get(flag)
        if path is None:
            return None
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            self.problems.append(f"--{flag.replace('_', '-')} {path}: cannot read it ({reason})")
            return None

    def number(
        self, flag: str, default: str, low: float, high: float, what: str, whole: bool = False
    ) -> float:
        text = self.get(flag, default) or default
        try:
            value = float(text)
            if not low <= value <= high or (whole and not value.is_integer()):
                raise ValueError
        except ValueError:
            self.problems.append(f"--{flag.replace('_', '-')} must be {what}, not {text!r}")
            return float(default)
        return value


def _s3_config(settings: _Settings) -> S3Config | None:
    endpoint = settings.get("s3_endpoint")
    if endpoint is None:
        return None
    access, secret = settings.get("s3_access_key"), settings.get("s3_secret_key")
    if not access or not secret:
        settings.problems.append("--s3-endpoint needs --s3-access-key and --s3-secret-key as well")
    if "://" in endpoint:
        settings.problems.append(
            "--s3-endpoint is host:port without a scheme; use --s3-secure for TLS"
        )
    return S3Config(
        endpoint=endpoint,
        access_key=access or "",
        secret_key=secret or "",
        bucket=settings.get("s3_bucket", "modelregistry") or "modelregistry",
        secure=(settings.get("s3_secure", "false") or "false").lower() == "true",
        region=settings.get("s3_region", "us-east-1") or "us-east-1",
    )


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1`` (with or without brackets)."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def _tls_config(settings: _Settings, listen_host: str) -> tuple[TlsConfig | None, bool]:
    """TLS from ``--tls-*`` (files read and checked now) and whether plaintext is allowed."""
    problems = settings.problems
    cert_path, key_path = settings.get("tls_cert"), settings.get("tls_key")
    insecure = settings.switch("insecure")
    if (cert_path is None) != (key_path is None):
        problems.append("--tls-cert and --tls-key go together: give both or neither")
    cert, key, client_ca = (
        settings.pem("tls_cert"),
        settings.pem("tls_key"),
        settings.pem("tls_client_ca"),
    )
    if settings.get("tls_client_ca") is not None and cert_path is None:
        problems.append("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key as well")
    if cert_path is None and listen_host and not is_loopback(listen_host) and not insecure:
        problems.append(
            f"--listen {listen_host} is not a loopback address, so the server will not serve it "
            "in plaintext: give --tls-cert and --tls-key, or pass --insecure to allow plaintext"
        )
    if cert is None or key is None:
        return None, insecure
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # The password callback makes an encrypted key fail instead of prompting on a terminal.
        context.load_cert_chain(cert_path or "", key_path, password=lambda: b"")
    except (ssl.SSLError, OSError):
        problems.append(
            f"--tls-cert {cert_path} and --tls-key {key_path} must be a PEM certificate and "
            "its unencrypted PEM private key"
        )
    if client_ca is not None:
        try:
            context.load_verify_locations(cadata=client_ca.decode("ascii", "replace"))
            context.verify_mode = ssl.CERT_REQUIRED
        except (ssl.SSLError, ValueError):
            problems.append(
                f"--tls-client-ca {settings.get('tls_client_ca')} holds no PEM CA certificate"
            )
    return TlsConfig(cert, key, client_ca, context), insecure


def _artifact_service_tls(settings: _Settings) -> ClientTlsConfig | None:
    """TLS towards a separate ArtifactService: on when any ``--artifact-service-*`` is given."""
    ca = settings.pem("artifact_service_ca")
    cert, key = settings.pem("artifact_service_cert"), settings.pem("artifact_service_key")
    given = [settings.get(f) for f in ("artifact_service_cert", "artifact_service_key")]
    if (given[0] is None) != (given[1] is None):
        settings.problems.append(
            "--artifact-service-cert and --artifact-service-key go together: give both or neither"
        )
    if ca is None and cert is None and key is None:
        return None
    if settings.get("artifact_service_url") is None:
        settings.problems.append(
            "--artifact-service-ca, --artifact-service-cert and --artifact-service-key apply "
            "only with --artifact-service-url"
        )
    return ClientTlsConfig(ca, cert, key)


def _artifact_service(settings: _Settings, services: str) -> tuple[str | None, str | None]:
    """Where a metadata-only server reaches the ArtifactService, and the token it presents."""
    url, token = settings.get("artifact_service_url"), settings.get("artifact_service_token")
    if services == "metadata" and url is None:
        settings.problems.append(
            "serving metadata alone needs --artifact-service-url (host:port of the "
            "ArtifactService) so that commits can check blobs"
        )
    if services == "metadata" and token is None:
        settings.problems.append(
            "serving metadata alone needs --artifact-service-token (or "
            "MODELREGISTRY_ARTIFACT_SERVICE_TOKEN): the token it presents to the ArtifactService"
        )
    return url, token


def _log_level(settings: _Settings) -> str:
    level = (settings.get("log_level", "INFO") or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        settings.problems.append(
            f"--log-level must be DEBUG, INFO, WARNING or ERROR, not {level!r}"
        )
    return level


def load_config(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> ServerConfig:
    """Parse ``argv`` (without the program name) and the environment into a config.

    Raises:
        ConfigError: One or more settings are invalid.
        SystemExit: From argparse, for unknown flags or ``--help``.
    """
    args = build_parser().parse_args(list(argv))
    settings = _Settings(args, os.environ if environ is None else environ)
    get, number, problems = settings.get, settings.number, settings.problems

    listen = get("listen", "127.0.0.1:50051") or ""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        problems.append(f"--listen must be host:port with a port from 0 to 65535, not {listen!r}")

    database_url = get("database_url")
    if database_url is not None and not database_url.startswith(("postgres://", "postgresql://")):
        problems.append("--database-url must start with postgresql:// (or postgres://)")

    tls, insecure = _tls_config(settings, host)
    artifact_tls = _artifact_service_tls(settings)
    s3 = _s3_config(settings)

    services: ServiceSelection = args.services
    artifact_url, artifact_token = _artifact_service(settings, services)
    admin_token_file = get("admin_token_file")
    metadata_ca = settings.pem("metadata_service_ca")
    oidc = read_oidc_config(get, number, problems)
    limits = read_limits(number, get, problems)
    # The HTTP and metrics ports follow --listen's rule: plaintext on loopback or with --insecure.
    plaintext_ok = lambda h: tls is not None or insecure or is_loopback(h)  # noqa: E731
    http = read_http_config(get, problems, embedded=database_url is None, plaintext_ok=plaintext_ok)
    metrics = read_metrics_config(get, problems, plaintext_ok=plaintext_ok)
    exporter, log_level = read_trace_exporter(get, problems), _log_level(settings)

    grace = number("shutdown_grace", "3", 0, 300, "seconds from 0 to 300")
    session_ttl = number("upload_session_ttl", "72000", 0, 30 * 86400, "seconds up to 30 days")
    sweep_interval = number("sweep_interval", "300", 0, 86400, "seconds up to one day")
    part_size = number(
        "upload_part_size", "16", 5, 512, "a whole number of MiB from 5 to 512", whole=True
    )
    in_flight = number(
        "upload_parts_in_flight", "2", 1, 16, "a whole number from 1 to 16", whole=True
    )
    url_ttl = read_download_url_ttl(number)

    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))
    return ServerConfig(
        services=services,
        listen=listen,
        data_dir=Path(get("data_dir", ".modelregistry") or ".modelregistry").resolve(),
        database_url=database_url,
        s3=s3,
        artifact_service_url=artifact_url,
        artifact_service_token=artifact_token,
        oidc=oidc,
        limits=limits,
        admin_token_file=None if admin_token_file is None else Path(admin_token_file).resolve(),
        otel_exporter=exporter,
        log_level=log_level,
        shutdown_grace_s=grace,
        upload_session_ttl_s=session_ttl,
        sweep_interval_s=sweep_interval,
        upload_part_size_mib=int(part_size),
        upload_parts_in_flight=int(in_flight),
        tls=tls,
        insecure=insecure,
        artifact_service_tls=artifact_tls,
        download_url_ttl_s=url_ttl,
        direct_uploads=not settings.switch("no_direct_uploads"),
        metadata_service_url=get("metadata_service_url"),
        metadata_service_token=get("metadata_service_token"),
        metadata_service_tls=None if metadata_ca is None else ClientTlsConfig(metadata_ca),
        http=http,
        metrics=metrics,
    )
