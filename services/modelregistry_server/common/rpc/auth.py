"""Authentication at the edge: one server interceptor turns each call's credential into a
``Principal`` and hands it to the servicer through ``current_principal()``.

The gRPC health service and server reflection stay open (Kubernetes probes and tools such as
grpcurl need them); every other method runs only after the credential checked out, and a
call without one ends with ``UNAUTHENTICATED`` before its handler starts.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from modelregistry_server.common.kernel.errors import RegistryError
from modelregistry_server.common.kernel.identity import AccessCheck, Principal
from modelregistry_server.common.rpc.status import abort_with
from modelregistry_server.common.rpc.tls_peer import peer_principal_name

Authenticate = Callable[[str | None], Awaitable[Principal]]
OPEN_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)
if TYPE_CHECKING:
    _Handler = grpc.RpcMethodHandler[Any, Any]  # generic in grpc's stubs only
else:
    _Handler = grpc.RpcMethodHandler
_PRINCIPAL: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "modelregistry_principal", default=None
)


def current_principal() -> Principal:
    """The caller of the RPC being served.

    Raises:
        RuntimeError: Called outside an authenticated call (a wiring bug).
    """
    principal = _PRINCIPAL.get()
    if principal is None:
        raise RuntimeError("no authenticated principal: the auth interceptor is not installed")
    return principal


def _authorization(details: grpc.HandlerCallDetails) -> str | None:
    for key, value in details.invocation_metadata or ():
        if key == "authorization" and isinstance(value, str):
            return value
    return None


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Runs ``authenticate`` before every handler of every service not in ``OPEN_SERVICES``.

    With ``trust_client_certificates`` (mutual TLS: the server verified the certificate
    against its client CA), a call without a bearer token is its certificate's principal
    (first DNS/URI SAN, else e-mail SAN, else CN); a bearer token, if sent, still wins.
    """

    def __init__(self, authenticate: Authenticate, *, trust_client_certificates: bool) -> None:
        self._authenticate = authenticate
        self._trust_certificates = trust_client_certificates

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler:
        """Wrap the method's handler so that it authenticates first."""
        handler = await continuation(handler_call_details)
        if handler is None or is_open(handler_call_details.method):
            return handler
        authorization = _authorization(handler_call_details)
        authenticate, trust_certificates = self._authenticate, self._trust_certificates

        async def enter(request: Any, context: Any) -> Callable[[], None]:
            # Without a bearer token, a verified client certificate names the caller.
            name = (
                peer_principal_name(context) if trust_certificates and not authorization else None
            )
            principal = Principal(name, "mtls") if name else await authenticate(authorization)
            token = _PRINCIPAL.set(principal)
            return lambda: _PRINCIPAL.reset(token)

        return wrap_handler(handler, enter)


def is_open(method: str) -> bool:
    """Whether ``/package.Service/Method`` belongs to a service that needs no credential."""
    return method.lstrip("/").split("/", 1)[0] in OPEN_SERVICES


# Called before the handler with the request (None for a client stream) and the context;
# returns what to call once the handler is done. A RegistryError it raises ends the call with
# that error's status before the handler runs.
Enter = Callable[[Any, Any], Awaitable[Callable[[], None]]]


async def _run_enter(enter: Enter, request: Any, context: Any) -> Callable[[], None]:
    try:
        return await enter(request, context)
    except RegistryError as exc:
        await abort_with(context, exc)


def wrap_handler(handler: _Handler, enter: Enter) -> _Handler:
    """``handler`` with ``enter`` run first, for any of the four call shapes."""
    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        unary_unary = handler.unary_unary

        async def unary(request: Any, context: Any) -> Any:
            leave = await _run_enter(enter, request, context)
            try:
                return await unary_unary(request, context)
            finally:
                leave()

        return grpc.unary_unary_rpc_method_handler(unary, **serializers)
    if handler.stream_unary is not None:
        stream_unary = handler.stream_unary

        async def client_stream(requests: Any, context: Any) -> Any:
            leave = await _run_enter(enter, None, context)
            try:
                return await stream_unary(requests, context)
            finally:
                leave()

        return grpc.stream_unary_rpc_method_handler(client_stream, **serializers)
    # The servicers' streaming methods are async generators (grpc's stubs type them as
    # plain iterators).
    streaming: Any = handler.unary_stream or handler.stream_stream
    assert streaming is not None
    takes_request = handler.unary_stream is not None

    async def server_stream(request: Any, context: Any) -> AsyncIterator[Any]:
        leave = await _run_enter(enter, request if takes_request else None, context)
        try:
            async for response in streaming(request, context):
                yield response
        finally:
            leave()

    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(server_stream, **serializers)
    return grpc.stream_stream_rpc_method_handler(server_stream, **serializers)


_ACCESS: contextvars.ContextVar[AccessCheck | None] = contextvars.ContextVar(
    "modelregistry_access", default=None
)


def current_access() -> AccessCheck:
    """The caller's rights in the RPC being served (set by the authorization interceptor).

    Raises:
        RuntimeError: Called outside an authorized call (a wiring bug).
    """
    access = _ACCESS.get()
    if access is None:
        raise RuntimeError("no access check: the authorization interceptor is not installed")
    return access


def enter_access(access: AccessCheck) -> contextvars.Token[AccessCheck | None]:
    """Make ``access`` the current call's rights (the authorization interceptor calls it)."""
    return _ACCESS.set(access)


def leave_access(token: contextvars.Token[AccessCheck | None]) -> None:
    """Undo ``enter_access``."""
    _ACCESS.reset(token)
