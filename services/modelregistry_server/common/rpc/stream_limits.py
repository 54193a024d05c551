"""Bounds on streams: how many are open, per server and per principal, and how long they idle.

A stream holds a task, buffers and often a part of an upload in memory for as long as it is
open, so a client that opens many, or opens one and stops, could make the server hold memory
without limit. Each streaming call therefore takes a slot first: beyond ``max_streams`` in the
server, ``max_streams_per_principal`` for one principal or, for ``WatchModelEvents``,
``max_watch_streams_per_principal``, the call is refused with ``RESOURCE_EXHAUSTED``
(``TOO_MANY_STREAMS``, ``TOO_MANY_WATCH_STREAMS``) and a retry-after hint.

Uploads and downloads must also keep moving: a client stream (``Write``) that sends no message
for ``idle_timeout_s`` ends with ``RESOURCE_EXHAUSTED`` (``STREAM_IDLE``; the upload session
keeps what was committed and resumes), and a server stream (``Read``) whose client reads
nothing for as long (the server is stuck sending) is cancelled. Watches idle by nature and are
left alone; keepalive pings notice their dead peers.

When the server shuts down (SIGTERM), every stream ends at once with ``UNAVAILABLE``
(``SHUTTING_DOWN``) after health has turned ``NOT_SERVING``: a watch reconnects elsewhere, an
upload resumes from its committed size on any replica; unary calls get the shutdown grace.

The counters show the bounds being hit: ``refused`` by reason and ``idle_ended``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from modelregistry_server.common.kernel.errors import RegistryError, ResourceExhausted, Unavailable
from modelregistry_server.common.limits_config import Limits
from modelregistry_server.common.rpc.auth import current_principal, is_open
from modelregistry_server.common.rpc.status import abort_with

_log = logging.getLogger(__name__)
_Handler = Any
TOO_MANY_STREAMS = "TOO_MANY_STREAMS"
TOO_MANY_WATCH_STREAMS = "TOO_MANY_WATCH_STREAMS"
STREAM_IDLE = "STREAM_IDLE"
SHUTTING_DOWN = "SHUTTING_DOWN"
_WATCH_METHOD = "WatchModelEvents"


@dataclass
class StreamCounters:
    """What the bounds did since start-up (plain integers: one event loop, no races)."""

    open: int = 0
    refused: collections.Counter[str] = field(default_factory=collections.Counter)
    idle_ended: int = 0


@dataclass(frozen=True)
class StreamBounds:
    """The bounds (``Limits`` fields of the same names)."""

    max_streams: int
    max_streams_per_principal: int
    max_watch_streams_per_principal: int
    idle_timeout_s: float

    @classmethod
    def of(cls, limits: Limits) -> StreamBounds:
        """The bounds the server's flags set."""
        return cls(
            limits.max_streams,
            limits.max_streams_per_principal,
            limits.max_watch_streams_per_principal,
            limits.stream_idle_timeout_s,
        )


class StreamLimiter:
    """Slots for open streams, and the watchdog that cancels stalled downloads."""

    def __init__(self, bounds: StreamBounds, counters: StreamCounters | None = None) -> None:
        self.bounds = bounds
        self.counters = counters or StreamCounters()
        self._per_principal: collections.Counter[str] = collections.Counter()
        self._watches: collections.Counter[str] = collections.Counter()
        # Server streams blocked in a send: task -> when the send began.
        self._sending: dict[asyncio.Task[Any], float] = {}
        self._watchdog: asyncio.Task[None] | None = None
        self._shutdown = asyncio.Event()

    def begin_shutdown(self) -> None:
        """End every open stream (``SHUTTING_DOWN``) and refuse new ones."""
        self._shutdown.set()

    def acquire(self, principal: str, watch: bool) -> Callable[[], None]:
        """Take a slot for a stream of ``principal``; return what gives it back.

        Raises:
            ResourceExhausted: A bound is reached.
        """
        bounds, counters = self.bounds, self.counters
        if self._shutdown.is_set():
            raise _shutting_down()
        if counters.open >= bounds.max_streams:
            raise self._refuse(
                TOO_MANY_STREAMS,
                f"the server has {counters.open} streams open, its limit (--max-streams)",
            )
        if self._per_principal[principal] >= bounds.max_streams_per_principal:
            raise self._refuse(
                TOO_MANY_STREAMS,
                f"{principal!r} has {self._per_principal[principal]} streams open, the limit "
                "per principal (--max-streams-per-principal); finish or cancel some",
            )
        if watch and self._watches[principal] >= bounds.max_watch_streams_per_principal:
            raise self._refuse(
                TOO_MANY_WATCH_STREAMS,
                f"{principal!r} has {self._watches[principal]} WatchModelEvents streams open, "
                "the limit per principal (--max-watch-streams-per-principal); one watch can "
                "follow many models",
            )
        counters.open += 1
        self._per_principal[principal] += 1
        if watch:
            self._watches[principal] += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            counters.open -= 1
            self._per_principal[principal] -= 1
            if self._per_principal[principal] <= 0:
                del self._per_principal[principal]
            if watch:
                self._watches[principal] -= 1
                if self._watches[principal] <= 0:
                    del self._watches[principal]

        return release

    def _refuse(self, reason: str, message: str) -> ResourceExhausted:
        self.counters.refused[reason] += 1
        return ResourceExhausted(message, reason=reason, retry_after_s=1.0)

    async def idle_guard(self, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """``requests``, ended with ``STREAM_IDLE`` if the client sends nothing for too long
        (and with ``SHUTTING_DOWN`` when the server shuts down)."""
        async for request in self.until_shutdown(requests, self.bounds.idle_timeout_s):
            yield request

    async def until_shutdown(
        self, items: AsyncIterator[Any], idle_timeout_s: float | None = None
    ) -> AsyncIterator[Any]:
        """``items`` until the server shuts down, or until none comes for ``idle_timeout_s``.

        Raises:
            Unavailable: ``SHUTTING_DOWN``.
            ResourceExhausted: ``STREAM_IDLE``.
        """
        iterator = items.__aiter__()
        shutdown = asyncio.ensure_future(self._shutdown.wait())
        following: asyncio.Future[Any] | None = None
        try:
            while True:
                following = asyncio.ensure_future(iterator.__anext__())
                done, _ = await asyncio.wait(
                    (following, shutdown), timeout=idle_timeout_s, return_when="FIRST_COMPLETED"
                )
                if following not in done:
                    following.cancel()
                    if shutdown in done:
                        raise _shutting_down()
                    self.counters.idle_ended += 1
                    raise ResourceExhausted(
                        f"the stream sent nothing for {idle_timeout_s:g} s "
                        "(--stream-idle-timeout) and was ended; what was committed is kept: "
                        "ask QueryWriteStatus and resume",
                        reason=STREAM_IDLE,
                        retry_after_s=0.0,
                    )
                try:
                    item = following.result()
                except StopAsyncIteration:
                    return
                yield item
        finally:
            # Ended early (refused, cancelled, shut down): the step in flight and the source
            # are ended too, so their own clean-up (an upload's, a read's) runs now.
            shutdown.cancel()
            if following is not None and not following.done():
                following.cancel()
                with contextlib.suppress(BaseException):
                    await following
            close = getattr(iterator, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    async def checked_shutdown(self, items: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """``items``, ended with ``SHUTTING_DOWN`` at the first item after shutdown began.

        For byte streams: a check between chunks costs nothing per byte, where racing every
        chunk against the shutdown would cost a task each.
        """
        async for item in items:
            if self._shutdown.is_set():
                raise _shutting_down()
            yield item

    def sending(self, task: asyncio.Task[Any]) -> None:
        """``task`` starts sending a response (it may block while the client does not read)."""
        self._sending[task] = asyncio.get_running_loop().time()
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.create_task(self._watch_sends(), name="stream-watchdog")

    def sent(self, task: asyncio.Task[Any]) -> None:
        """``task`` finished sending (or ended)."""
        self._sending.pop(task, None)

    async def stop(self) -> None:
        """Stop the watchdog."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None

    async def _watch_sends(self) -> None:
        timeout = self.bounds.idle_timeout_s
        loop = asyncio.get_running_loop()
        while self._sending:
            await asyncio.sleep(min(1.0, timeout / 4))
            now = loop.time()
            for task, since in list(self._sending.items()):
                if now - since > timeout:
                    self._sending.pop(task, None)
                    self.counters.idle_ended += 1
                    _log.info("cancelled a download whose client read nothing for %.0f s", timeout)
                    task.cancel()


def _shutting_down() -> Unavailable:
    return Unavailable(
        "the server is shutting down; reconnect (another replica, or this one once it is "
        "back) and resume: uploads keep what they committed, watches resume from their last "
        "event id",
        reason=SHUTTING_DOWN,
    )


class StreamLimitInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Applies a :class:`StreamLimiter` to every streaming method. Place it after
    authentication (it counts per principal)."""

    def __init__(self, limiter: StreamLimiter) -> None:
        self._limiter = limiter

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        """Wrap streaming handlers; unary ones pass through."""
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or is_open(method) or handler.unary_unary is not None:
            return handler
        return _wrap(handler, self._limiter, method.rsplit("/", 1)[-1] == _WATCH_METHOD)


async def _enter(limiter: StreamLimiter, watch: bool, context: Any) -> Callable[[], None]:
    try:
        return limiter.acquire(current_principal().name, watch)
    except RegistryError as exc:
        await abort_with(context, exc)


def _wrap(handler: _Handler, limiter: StreamLimiter, watch: bool) -> _Handler:
    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.stream_unary is not None:
        stream_unary = handler.stream_unary

        async def client_stream(requests: Any, context: Any) -> Any:
            release = await _enter(limiter, watch, context)
            try:
                return await stream_unary(limiter.idle_guard(requests), context)
            finally:
                release()

        return grpc.stream_unary_rpc_method_handler(client_stream, **serializers)
    streaming: Any = handler.unary_stream or handler.stream_stream
    takes_stream = handler.stream_stream is not None

    async def server_stream(request: Any, context: Any) -> AsyncIterator[Any]:
        release = await _enter(limiter, watch, context)
        task = asyncio.current_task()
        assert task is not None
        if takes_stream and not watch:
            request = limiter.idle_guard(request)
        try:
            source = streaming(request, context)
            responses = (
                limiter.until_shutdown(source) if watch else limiter.checked_shutdown(source)
            )
            async for response in responses:
                if not watch:
                    limiter.sending(task)  # grpc sends it in this task when we resume
                yield response
                limiter.sent(task)
        except Unavailable as exc:  # only until_shutdown raises it here
            await abort_with(context, exc)
        finally:
            limiter.sent(task)
            release()

    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(server_stream, **serializers)
    return grpc.stream_stream_rpc_method_handler(server_stream, **serializers)
