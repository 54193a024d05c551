"""Watching change events: the reconnecting streams :meth:`Client.watch` and
:meth:`AsyncClient.watch` return, and what they share.

Both streams resume after the last event handed out, so a reconnect neither loses nor repeats
one, and adopt the start the server names in the response headers when no event came yet.

When the registry has deleted events after that point (its event retention, answered with
``OUT_OF_RANGE`` / ``EVENT_ID_EXPIRED``), a gap-free resume is impossible: the stream
re-subscribes from "now" and reports the gap (``on_resync``, ``resyncs``) so that a consumer
that keeps state reloads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import threading
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Sequence,
)
from types import TracebackType
from typing import Protocol, Self

import grpc
import grpc.aio

from modelregistry import _convert
from modelregistry._transport import AsyncTransport, RetryPolicy, Transport, is_retryable
from modelregistry.errors import (
    CancelledError,
    OutOfRangeError,
    RegistryError,
    UnavailableError,
    from_rpc_error,
)
from modelregistry.metadata.v1 import model_event_pb2

_log = logging.getLogger("modelregistry")

# Response header of WatchModelEvents: the event id the stream starts after (see the proto).
WATCH_START_HEADER = "x-modelregistry-watch-after-event-id"
# The reason of a resume point older than the events the registry keeps.
EVENT_ID_EXPIRED = "EVENT_ID_EXPIRED"
# Called with the event id a re-subscribed stream starts after, once events may have been
# missed; the async stream awaits what it returns if that is awaitable.
OnResync = Callable[[str], object]


def watch_start(headers: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The start a watch call's response headers name, or None without that header."""
    for key, value in headers or ():
        if key == WATCH_START_HEADER:
            return value.decode() if isinstance(value, bytes) else value
    return None


def reconnect_delay(
    policy: RetryPolicy, backoffs: Iterator[float], reason: str, hint_s: float | None = None
) -> float:
    """How long a watch stream lost for ``reason`` waits before reconnecting: the next backoff,
    or the server's ``hint_s`` (its RetryInfo) if longer, at most ``policy.max_retry_delay_s``.

    Raises :class:`UnavailableError` instead when ``policy`` allows no retries.
    """
    if policy.max_attempts <= 1:  # retry=NO_RETRY: the caller wants no reconnects
        raise UnavailableError(f"watch stream lost: {reason}", reason="WATCH_LOST")
    delay = next(backoffs, None)
    if delay is None:
        # Keep reconnecting forever at the longest backoff: a watcher outlives restarts.
        delay = random.uniform(policy.max_backoff_s / 2, policy.max_backoff_s)  # noqa: S311
    delay = min(max(delay, hint_s or 0.0), policy.max_retry_delay_s)
    _log.warning("watch: %s; reconnecting in %.1fs", reason, delay)
    return delay


def watch_event_types(event_types: Iterable[int | str]) -> tuple[int | str, ...]:
    """The event types a watch asked for, materialised once and checked now.

    Validating a generator would otherwise leave nothing to watch, and an unknown name should
    fail at ``watch()``, not on the first ``next()``.
    """
    types = tuple(event_types)
    _convert.event_types(types)
    return types


def _client_closed() -> CancelledError:
    return CancelledError("watch stopped: the client was closed", reason="CLIENT_CLOSED")


def _expired(error: RegistryError, after_event_id: str) -> bool:
    """True when ``error`` says the resume point has expired (and there was one: a watch from
    "now" cannot expire, so this never loops)."""
    if not (isinstance(error, OutOfRangeError) and error.reason == EVENT_ID_EXPIRED):
        return False
    if not after_event_id:
        return False
    _log.warning(
        "watch: the registry no longer keeps the events after %s (event retention); watching "
        "from now on: events in between may have been missed",
        after_event_id,
    )
    return True


class _Gap:
    """The resync bookkeeping both streams share: whether a gap is still to be reported."""

    def __init__(self, on_resync: OnResync | None) -> None:
        self.on_resync = on_resync
        self.pending = False
        self.count = 0

    def take(self) -> bool:
        """True (once) when a gap is to be reported now; counts it."""
        if not self.pending:
            return False
        self.pending = False
        self.count += 1
        return True


class _EventCall(Protocol):
    """The part of a sync server-stream call that :class:`WatchStream` uses."""

    def __iter__(self) -> Iterator[model_event_pb2.ModelEvent]: ...

    def cancel(self) -> bool: ...

    def initial_metadata(self) -> Sequence[tuple[str, str | bytes]] | None: ...

    def code(self) -> grpc.StatusCode | None: ...


class WatchStream(Iterator[model_event_pb2.ModelEvent]):
    """The iterator :meth:`Client.watch` returns: reconnecting, closable, a context manager.

    ``last_event_id`` is the id of the last event handed out (pass it to a later watch to
    resume). :meth:`close` may be called from any thread; it cancels the server stream, which
    ends a ``for`` loop blocked waiting for the next event.

    If the registry no longer keeps the events after the resume point (``EVENT_ID_EXPIRED``),
    the stream subscribes again from "now", calls ``on_resync(start)`` in the iterating thread
    once that subscription is in place (before any later event is yielded) and counts the gap
    in ``resyncs``: events in between may have been missed, so reload the state you follow.
    """

    def __init__(
        self,
        transport: Transport,
        model: str | None,
        after_event_id: str,
        event_types: tuple[int | str, ...],
        on_resync: OnResync | None = None,
    ) -> None:
        self._transport = transport
        self._model = model
        self._event_types = event_types
        self.last_event_id = after_event_id
        self._gap = _Gap(on_resync)
        self._lock = threading.Lock()
        self._closed = threading.Event()  # also wakes a reconnect backoff early
        self._call: _EventCall | None = None
        self._events = self._run()

    def _open_call(self) -> _EventCall:
        """Start one WatchModelEvents call from ``last_event_id`` (caller holds the lock)."""
        request = _convert.watch_request(self._model, self.last_event_id, self._event_types)
        # No deadline: the stream is meant to stay open. The channel's keepalive pings notice a
        # dead server and turn it into UNAVAILABLE.
        try:
            call: _EventCall = self._transport.metadata_stub.WatchModelEvents(
                request, metadata=self._transport.metadata
            )
        except ValueError:  # grpc's "Channel closed": the Client was closed under us
            raise _client_closed() from None
        self._call = call
        return call

    def _note_start(self, call: _EventCall) -> bool:
        """Wait for the call's headers; adopt the start they name if no event came yet.

        With that id a stream that drops before its first event resumes where it began,
        instead of "from now", which would lose what changed in between. False if the call
        ended without the header (an error, or a server that does not send it).
        """
        start = watch_start(call.initial_metadata())
        if start is None:
            return False
        with self._lock:
            if not self.last_event_id:
                self.last_event_id = start
        return True

    @property
    def resyncs(self) -> int:
        """How many times events may have been missed (each an expired resume point)."""
        return self._gap.count

    def _report_gap(self) -> None:
        if self._gap.take() and self._gap.on_resync is not None:
            self._gap.on_resync(self.last_event_id)

    def _restart_if_expired(self, error: RegistryError) -> bool:
        """On an expired resume point, watch from "now" next and remember to report the gap."""
        with self._lock:
            if not _expired(error, self.last_event_id):
                return False
            self.last_event_id = ""
            self._gap.pending = True
            return True

    def wait_subscribed(self) -> str:
        """Block until the server has subscribed this stream; return the id it starts after.

        Every change committed after this returns will be yielded. Call it before reading the
        state you act on (``pull("m@production")``, say): a change between the read and the
        subscription would otherwise be missed. Raises the typed error if the server refuses
        the watch or cannot be reached; an expired resume point is re-subscribed from "now"
        (and reported, see the class).
        """
        while True:
            with self._lock:
                if self._closed.is_set():
                    raise CancelledError("the watch is closed", reason="WATCH_CLOSED")
                call = self._call if self._call is not None else self._open_call()
            if self._note_start(call) or call.code() in (None, grpc.StatusCode.OK):
                self._report_gap()
                return self.last_event_id
            try:
                next(iter(call))  # the call ended without headers: iterating raises why
            except grpc.RpcError as exc:
                error = from_rpc_error(exc, self._transport.target)
                if not self._restart_if_expired(error):
                    raise error from None
                with self._lock:
                    if self._call is call:
                        self._call = None  # the next round subscribes from now
                continue
            return self.last_event_id

    def _run(self) -> Generator[model_event_pb2.ModelEvent, None, None]:
        policy = self._transport.retry
        backoffs = policy.backoffs()
        while True:
            with self._lock:
                if self._closed.is_set():
                    return
                call = self._call if self._call is not None else self._open_call()
            try:
                if self._note_start(call):
                    self._report_gap()
                for event in call:
                    self._report_gap()  # (a server that sends no start header)
                    self.last_event_id = event.event_id
                    backoffs = policy.backoffs()  # progress made: start patient again
                    yield event
                reason, hint_s = "the server ended the stream", None
            except grpc.RpcError as exc:
                if self._closed.is_set():
                    return
                error = from_rpc_error(exc, self._transport.target)
                if self._restart_if_expired(error):
                    continue  # at once, from now (the finally below drops this call)
                if not is_retryable(error):
                    raise error from None
                reason, hint_s = error.message, error.retry_delay_s
            finally:
                # Reached also when the consumer drops or closes the generator mid-stream.
                call.cancel()
                with self._lock:
                    if self._call is call:
                        self._call = None  # the next round opens a new call
            if self._closed.wait(reconnect_delay(policy, backoffs, reason, hint_s)):
                return

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> model_event_pb2.ModelEvent:
        return next(self._events)

    def close(self) -> None:
        """Stop watching: cancel the server stream; iteration then ends (no exception)."""
        with self._lock:
            self._closed.set()
            call = self._call
        if call is not None:
            call.cancel()
        # ValueError, "generator already executing": another thread is inside next(); the
        # cancel above makes it return on its own.
        with contextlib.suppress(ValueError):
            self._events.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _AsyncEventCall(Protocol):
    """The part of a ``grpc.aio`` server-stream call that :class:`AsyncWatchStream` uses."""

    def __aiter__(self) -> AsyncIterator[model_event_pb2.ModelEvent]: ...

    def cancel(self) -> bool: ...

    async def initial_metadata(self) -> grpc.aio.Metadata: ...

    async def code(self) -> grpc.StatusCode: ...

    def done(self) -> bool: ...


class AsyncWatchStream(AsyncIterator[model_event_pb2.ModelEvent]):
    """The async iterator :meth:`AsyncClient.watch` returns; see :class:`WatchStream`.

    :meth:`aclose` may be awaited from another task: it cancels the server stream, which ends
    an ``async for`` waiting for the next event. ``on_resync`` may be a coroutine function.
    """

    def __init__(
        self,
        transport: AsyncTransport,
        model: str | None,
        after_event_id: str,
        event_types: tuple[int | str, ...],
        on_resync: OnResync | None = None,
    ) -> None:
        self._transport = transport
        self._model = model
        self._event_types = event_types
        self.last_event_id = after_event_id
        self._gap = _Gap(on_resync)
        self._closed = asyncio.Event()  # also wakes a reconnect backoff early
        self._call: _AsyncEventCall | None = None
        self._events = self._run()

    def _open_call(self) -> _AsyncEventCall:
        request = _convert.watch_request(self._model, self.last_event_id, self._event_types)
        # No deadline: the stream stays open; keepalive pings detect a dead server.
        try:
            call: _AsyncEventCall = self._transport.metadata_stub.WatchModelEvents(
                request, metadata=self._transport.metadata
            )
        except grpc.aio.UsageError:  # "Channel is closed": the client was closed under us
            raise _client_closed() from None
        self._call = call
        return call

    async def _note_start(self, call: _AsyncEventCall) -> bool:
        """See ``WatchStream._note_start``."""
        start = watch_start(await call.initial_metadata())
        if start is None:
            return False
        if not self.last_event_id:
            self.last_event_id = start
        return True

    @property
    def resyncs(self) -> int:
        """How many times events may have been missed (each an expired resume point)."""
        return self._gap.count

    async def _report_gap(self) -> None:
        if self._gap.take() and self._gap.on_resync is not None:
            result = self._gap.on_resync(self.last_event_id)
            if inspect.isawaitable(result):
                await result

    def _restart_if_expired(self, error: RegistryError) -> bool:
        """See ``WatchStream._restart_if_expired``."""
        if not _expired(error, self.last_event_id):
            return False
        self.last_event_id = ""
        self._gap.pending = True
        return True

    async def wait_subscribed(self) -> str:
        """Wait until the server has subscribed this stream; see ``WatchStream.wait_subscribed``."""
        while True:
            if self._closed.is_set():
                raise CancelledError("the watch is closed", reason="WATCH_CLOSED")
            call = self._call if self._call is not None else self._open_call()
            error = await self._refusal(call)
            if error is None:
                await self._report_gap()
                return self.last_event_id
            if not self._restart_if_expired(error):
                raise error
            call.cancel()
            if self._call is call:
                self._call = None  # the next round subscribes from now

    async def _refusal(self, call: _AsyncEventCall) -> RegistryError | None:
        """Wait for the call's headers (adopting the start they name); the error it ended with
        if the server refused it before subscribing, else None."""
        headers = await call.initial_metadata()
        start = watch_start(headers)
        if start is not None and not self.last_event_id:
            self.last_event_id = start
        # No headers at all: a trailers-only answer (the server refused before subscribing),
        # whose status is on its way even if the call does not say "done" yet.
        if start is None and (call.done() or not headers):
            code = await call.code()
            if code != grpc.StatusCode.OK:
                try:
                    await anext(aiter(call))  # the call ended without headers: this raises why
                except grpc.RpcError as exc:
                    return from_rpc_error(exc, self._transport.target)
        return None

    async def _run(self) -> AsyncGenerator[model_event_pb2.ModelEvent, None]:
        policy = self._transport.retry
        backoffs = policy.backoffs()
        while not self._closed.is_set():
            call = self._call if self._call is not None else self._open_call()
            try:
                if await self._note_start(call):
                    await self._report_gap()
                async for event in call:
                    await self._report_gap()  # (a server that sends no start header)
                    self.last_event_id = event.event_id
                    backoffs = policy.backoffs()  # progress made: start patient again
                    yield event
                reason, hint_s = "the server ended the stream", None
            except grpc.RpcError as exc:
                if self._closed.is_set():
                    return
                error = from_rpc_error(exc, self._transport.target)
                if self._restart_if_expired(error):
                    continue  # at once, from now (the finally below drops this call)
                if not is_retryable(error):
                    raise error from None
                reason, hint_s = error.message, error.retry_delay_s
            except asyncio.CancelledError:
                # grpc.aio reports a locally cancelled call as CancelledError. If aclose() did
                # that, the stream simply ends; a cancellation of our own task propagates.
                task = asyncio.current_task()
                if self._closed.is_set() and (task is None or not task.cancelling()):
                    return
                raise
            finally:
                call.cancel()
                if self._call is call:
                    self._call = None  # the next round opens a new call
            delay = reconnect_delay(policy, backoffs, reason, hint_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), delay)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> model_event_pb2.ModelEvent:
        return await anext(self._events)

    async def aclose(self) -> None:
        """Stop watching: cancel the server stream; iteration then ends (no exception)."""
        self._closed.set()
        if self._call is not None:
            self._call.cancel()
        # RuntimeError, "asynchronous generator is already running": another task is inside
        # __anext__; the cancel above makes it return on its own.
        with contextlib.suppress(RuntimeError):
            await self._events.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
