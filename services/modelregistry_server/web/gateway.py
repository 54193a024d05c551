"""The HTTP face's way into the services: gRPC calls to this process's own server.

Every JSON call and every page goes through the same interceptors as a gRPC client's call
(authentication, request checks, the permission table, stream limits, audit), so identity,
roles, refusals and audit rows are the same by construction, not by a second copy of the rules.
The hop is a loopback channel (or the private Unix socket when the public port has TLS);
file bytes do not take it (see ``files.py``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import grpc
from google.protobuf import descriptor, message_factory
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from modelregistry_server.web.session import sendable_credential

# gRPC code → HTTP status, as in google/rpc/code.proto's HTTP mapping.
HTTP_STATUS = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
}
_STATUS_DETAILS_KEY = "grpc-status-details-bin"
# A page's calls should answer quickly; a slow database shows as an error page, not a hang.
DEFAULT_TIMEOUT_S = 30.0
_MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class CallError(Exception):
    """A call ended with a non-OK status; ``status`` is the server's ``google.rpc.Status``."""

    def __init__(self, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.status = status

    @property
    def http_status(self) -> int:
        """The HTTP status code of the gRPC code."""
        return HTTP_STATUS.get(self.status.code, 500)

    @property
    def reason(self) -> str:
        """The ``ErrorInfo`` reason, or ``""`` when the status carries none."""
        for detail in self.status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                return str(info.reason)
        return ""


def error_status(code: int, message: str) -> status_pb2.Status:
    """A ``google.rpc.Status`` for an error found in the HTTP layer itself."""
    return status_pb2.Status(code=code, message=message)


def status_of(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The ``google.rpc.Status`` a failed call carried (or one made from its code)."""
    trailers: Any = error.trailing_metadata() or ()
    for key, value in trailers:
        if key == _STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status()
            status.ParseFromString(value)
            return status
    code = error.code()
    return error_status(code.value[0], error.details() or code.name)


class Gateway:
    """Calls any method of this process's services with the HTTP caller's credential."""

    def __init__(self, target: str) -> None:
        options = [
            ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
        ]
        self._channel = grpc.aio.insecure_channel(target, options=options)

    @property
    def channel(self) -> grpc.aio.Channel:
        """The channel into this process's services (for typed stubs)."""
        return self._channel

    async def close(self) -> None:
        """Close the channel (calls in flight are cancelled)."""
        await self._channel.close(None)

    async def call(
        self,
        method: descriptor.MethodDescriptor,
        request: Message,
        credential: str | None,
        deadline_s: float = DEFAULT_TIMEOUT_S,
    ) -> Message:
        """One unary call.

        Raises:
            CallError: The call did not succeed; its status as the server sent it.
        """
        callable_ = self._channel.unary_unary(
            _path(method),
            request_serializer=_serialize,
            response_deserializer=message_factory.GetMessageClass(method.output_type).FromString,
        )
        try:
            response: Message = await callable_(
                request, metadata=bearer_metadata(credential), timeout=deadline_s
            )
        except grpc.aio.AioRpcError as exc:
            raise CallError(status_of(exc)) from None
        return response

    def open_stream(
        self, method: descriptor.MethodDescriptor, request: Message, credential: str | None
    ) -> ServerStream:
        """Start a server-streaming call; read its headers and messages from what it returns."""
        callable_ = self._channel.unary_stream(
            _path(method),
            request_serializer=_serialize,
            response_deserializer=message_factory.GetMessageClass(method.output_type).FromString,
        )
        return ServerStream(callable_(request, metadata=bearer_metadata(credential)))


class ServerStream:
    """A server-streaming call in flight: its response headers, then its messages."""

    def __init__(self, call: Any) -> None:
        self._call = call

    async def headers(self) -> dict[str, str]:
        """The response headers (initial metadata) once the server sent them; empty when the
        call ended without any (a refusal before it started)."""
        try:
            metadata: Any = await self._call.initial_metadata()
        except grpc.aio.AioRpcError:
            return {}  # the messages will raise the error
        return {key: value for key, value in metadata or () if isinstance(value, str)}

    async def messages(self) -> AsyncGenerator[Message, None]:
        """The responses until the call ends; the call is cancelled if the reader stops.

        Raises:
            CallError: The call failed; its status as the server sent it.
        """
        try:
            async for response in self._call:
                yield response
        except grpc.aio.AioRpcError as exc:
            raise CallError(status_of(exc)) from None
        finally:
            self._call.cancel()


def _serialize(message: Any) -> bytes:
    data: bytes = message.SerializeToString()
    return data


def _path(method: descriptor.MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def bearer_metadata(credential: str | None) -> tuple[tuple[str, str], ...]:
    """The call metadata that presents ``credential`` (none for an anonymous caller)."""
    if credential is None:
        return ()
    return (("authorization", f"Bearer {sendable_credential(credential)}"),)
