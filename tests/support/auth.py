"""Credentials for tests: one admin token every test registry accepts, and tokens of others.

Every registry a test starts (in process or as a subprocess) gets ``ADMIN_TOKEN`` written to
its ``<data-dir>/admin-token`` first, and adopts it as its bootstrap admin; the session's
``MODELREGISTRY_TOKEN`` is that token, so the SDK and CLI find it as a user's shell would.
"""

from __future__ import annotations

import collections
import secrets
from pathlib import Path
from typing import Any

import grpc

from modelregistry._credentials import ENV_TOKEN
from modelregistry.access.v1 import access_service_pb2 as access_pb
from modelregistry.access.v1 import access_service_pb2_grpc, role_binding_pb2

TOKEN_ENV = ENV_TOKEN  # where the SDK and CLI look for a token
ADMIN_TOKEN = f"mr1_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"


def install_admin_token(data_dir: Path) -> None:
    """Make the registry that will run on ``data_dir`` adopt ``ADMIN_TOKEN``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "admin-token"
    path.write_text(ADMIN_TOKEN + "\n")
    path.chmod(0o600)


def bearer(secret: str) -> tuple[tuple[str, str], ...]:
    """Call metadata presenting ``secret``."""
    return (("authorization", f"Bearer {secret}"),)


class _Credential:
    """Adds ``authorization`` to every call that does not carry one already."""

    def __init__(self, secret: str) -> None:
        self._metadata = bearer(secret)

    def _with_credential(self, metadata: Any) -> list[tuple[str, str]]:
        pairs = list(metadata or ())
        if not any(key == "authorization" for key, _ in pairs):
            pairs += self._metadata
        return pairs

    def _details(self, details: Any) -> Any:
        return details._replace(metadata=self._with_credential(details.metadata))


# grpc.aio files each interceptor under one call shape only (the first class it is an instance
# of), so each shape gets its own.
class _UnaryUnary(_Credential, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _UnaryStream(_Credential, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _StreamUnary(_Credential, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


class _StreamStream(_Credential, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


def authenticated_channel(target: str, secret: str = ADMIN_TOKEN) -> grpc.aio.Channel:
    """A plaintext channel whose calls present ``secret`` unless they bring their own."""
    kinds = (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)
    interceptors: list[Any] = [kind(secret) for kind in kinds]
    return grpc.aio.insecure_channel(target, interceptors=interceptors)


async def create_token(
    target: str, principal: str, role: str | None = "admin", scope: str = "*"
) -> str:
    """A new token of ``principal`` holding ``role`` on ``scope`` (None: no binding), made with
    the admin token; returns its secret."""
    async with authenticated_channel(target) as channel:
        stub = access_service_pb2_grpc.AccessServiceStub(channel)
        reply = await stub.CreateAccessToken(
            access_pb.CreateAccessTokenRequest(principal=principal, description="test")
        )
        if role is not None:
            await grant(stub, principal, role, scope)
    return reply.secret


async def grant(stub: Any, subject: str, role: str, scope: str) -> None:
    """Give ``subject`` ``role`` on ``scope`` through the AccessService ``stub``."""
    binding = role_binding_pb2.RoleBinding(subject=subject, role=role, scope=scope)
    await stub.CreateRoleBinding(access_pb.CreateRoleBindingRequest(role_binding=binding))


class _SyncCredential(
    _Credential,
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamStreamClientInterceptor,  # type: ignore[type-arg]
):
    """The same for the sync API, where one interceptor may serve every call shape."""

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._sync_details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._sync_details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._sync_details(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._sync_details(details), requests)

    def _sync_details(self, details: Any) -> Any:
        metadata = self._with_credential(details.metadata)
        return _SyncDetails(
            details.method, details.timeout, metadata, details.credentials,
            getattr(details, "wait_for_ready", None), getattr(details, "compression", None),
        )  # fmt: skip


class _SyncDetails(
    collections.namedtuple(
        "_SyncDetails",
        ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
    ),
    grpc.ClientCallDetails,
):
    """grpc's sync ClientCallDetails is an interface; this is the usual namedtuple of it."""


def authenticated_sync_channel(target: str, secret: str = ADMIN_TOKEN) -> grpc.Channel:
    """A plaintext sync channel whose calls present ``secret`` unless they bring their own."""
    return grpc.intercept_channel(grpc.insecure_channel(target), _SyncCredential(secret))
