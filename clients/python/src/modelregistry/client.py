"""The synchronous SDK client.

Every method returns the generated protobuf messages (``Model``, ``ModelVersion``, ``Alias``,
...) and raises :class:`~modelregistry.errors.RegistryError` subclasses. Unary calls get a
deadline (30 s by default) and are retried on ``UNAVAILABLE``; every mutating call carries a
fresh ``request_id`` so a retry never applies a change twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Generic, Protocol, Self, TypeVar

import grpc

from modelregistry import _convert
from modelregistry._pager import Pager
from modelregistry._transport import DEFAULT_TIMEOUT_S, AsyncTransport, RetryPolicy, Transport
from modelregistry.diff import VersionDiff
from modelregistry.errors import (
    CancelledError,
    UnavailableError,
    from_rpc_error,
)
from modelregistry.metadata.v1 import (
    alias_pb2,
    audit_event_pb2,
    metadata_service_pb2,
    model_event_pb2,
    model_pb2,
    model_version_pb2,
)

if TYPE_CHECKING:
    from modelregistry.cache import Cache
    from modelregistry.progress import Progress

ENV_OFFLINE = "MODELREGISTRY_OFFLINE"
_log = logging.getLogger("modelregistry")
TransportT = TypeVar("TransportT", Transport, AsyncTransport)


def offline_from_env() -> bool:
    """True if ``$MODELREGISTRY_OFFLINE`` is ``1``, ``true`` or ``yes`` (any case)."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in ("1", "true", "yes")


def offline_error(what: str) -> UnavailableError:
    """The error for a call that needs the registry while offline mode is on."""
    return UnavailableError(
        f"{what} needs the registry, but offline mode is on (${ENV_OFFLINE}); "
        "only resolve, pull and diff of cached references work offline",
        reason="OFFLINE_MODE",
    )


class ClientBase(Generic[TransportT]):
    """What :class:`Client` and :class:`~modelregistry.aio.AsyncClient` share besides their
    calls: the transport, offline mode and the lazily opened cache."""

    def __init__(
        self,
        transport: TransportT,
        cache_dir: str | os.PathLike[str] | None,
        offline: bool | None,
    ) -> None:
        self._transport: TransportT = transport
        self.offline = offline_from_env() if offline is None else offline
        self._cache_dir = cache_dir
        self._cache: Cache | None = None

    @property
    def target(self) -> str:
        """The ``host:port`` this client talks to."""
        return self._transport.target

    @property
    def cache(self) -> Cache:
        """The local file cache (created on first use)."""
        if self._cache is None:
            from modelregistry.cache import Cache  # lazy: only push/pull need it

            self._cache = Cache(self._cache_dir)
        return self._cache

    def _online(self, what: str) -> TransportT:
        if self.offline:
            raise offline_error(what)
        return self._transport


# Response header of WatchModelEvents: the event id the stream starts after (see the proto).
WATCH_START_HEADER = "x-modelregistry-watch-after-event-id"


def watch_start(headers: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The start a watch call's response headers name, or None without that header."""
    for key, value in headers or ():
        if key == WATCH_START_HEADER:
            return value.decode() if isinstance(value, bytes) else value
    return None


def reconnect_delay(policy: RetryPolicy, backoffs: Iterator[float], reason: str) -> float:
    """How long a watch stream lost for ``reason`` waits before reconnecting.

    Raises :class:`UnavailableError` instead when ``policy`` allows no retries.
    """
    if policy.max_attempts <= 1:  # retry=NO_RETRY: the caller wants no reconnects
        raise UnavailableError(f"watch stream lost: {reason}", reason="WATCH_LOST")
    delay = next(backoffs, None)
    if delay is None:
        # Keep reconnecting forever at the longest backoff: a watcher outlives restarts.
        delay = random.uniform(policy.max_backoff_s / 2, policy.max_backoff_s)  # noqa: S311
    _log.warning("watch: %s; reconnecting in %.1fs", reason, delay)
    return delay


class Client(ClientBase[Transport]):
    """A connection to one registry. Use it as a context manager, or call :meth:`close`.

    ``target`` is ``host:port`` (default ``$MODELREGISTRY_URL`` or ``127.0.0.1:50051``);
    ``timeout`` is the deadline of each unary call in seconds; ``retry`` how ``UNAVAILABLE`` is
    retried (5 attempts with jittered exponential backoff by default); ``actor`` the identity the
    audit log records (default ``$MODELREGISTRY_ACTOR`` or the OS user); ``cache_dir`` the local
    file cache (default ``$MODELREGISTRY_CACHE``); ``offline`` serves ``resolve`` and ``pull``
    from that cache without any network call (default ``$MODELREGISTRY_OFFLINE``).
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        actor: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        offline: bool | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        # The channel connects lazily, so building it costs nothing even when offline.
        transport = Transport(
            target, timeout=timeout, retry=retry, actor=actor, credentials=credentials
        )
        super().__init__(transport, cache_dir, offline)

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        """Close the channel (calls in flight fail with ``CANCELLED``) and the cache."""
        self._transport.close()
        if self._cache is not None:
            self._cache.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ models

    def get_model(self, name: str) -> model_pb2.Model:
        """The model ``name`` (``resnet`` or ``models/resnet``)."""
        t = self._online("get_model")
        return t.unary(
            t.metadata_stub.GetModel,
            metadata_service_pb2.GetModelRequest(name=_convert.model_name(name)),
        )

    def create_model(
        self, name: str, *, description: str = "", labels: Mapping[str, str] | None = None
    ) -> model_pb2.Model:
        """Create an empty model; :class:`AlreadyExistsError` if the name is taken."""
        t = self._online("create_model")
        return t.unary(
            t.metadata_stub.CreateModel,
            _convert.create_model_request(name, description, labels),
        )

    def list_models(
        self, *, filter: str = "", order_by: str = "", page_size: int = 0
    ) -> Pager[metadata_service_pb2.ListModelsResponse, model_pb2.Model]:
        """Every model matching ``filter`` (AIP-160), fetched page by page as you iterate.

        ``page_size`` is the page size per call (0 = the server's default of 50), not a limit.
        """
        t = self._online("list_models")
        return Pager(
            lambda token: t.unary(
                t.metadata_stub.ListModels,
                _convert.list_models_request(filter, order_by, page_size, token),
            ),
            lambda page: page.models,
        )

    def delete_model(self, name: str, *, force: bool = False) -> None:
        """Delete a model; with ``force`` also its versions and aliases.

        Without ``force`` a model that still has versions fails with
        :class:`FailedPreconditionError` (reason ``MODEL_HAS_VERSIONS``).
        """
        t = self._online("delete_model")
        t.unary(t.metadata_stub.DeleteModel, _convert.delete_model_request(name, force))

    # ------------------------------------------------------------------ versions

    def get_version(self, model: str, version: int) -> model_version_pb2.ModelVersion:
        """Version number ``version`` of ``model``, in any state, with its manifest."""
        t = self._online("get_version")
        return t.unary(
            t.metadata_stub.GetModelVersion,
            metadata_service_pb2.GetModelVersionRequest(name=_convert.version_name(model, version)),
        )

    def list_versions(
        self,
        model: str,
        *,
        filter: str = "",
        order_by: str = "",
        page_size: int = 0,
        show_deleted: bool = False,
    ) -> Pager[metadata_service_pb2.ListModelVersionsResponse, model_version_pb2.ModelVersion]:
        """The versions of ``model`` (``-`` for every model), newest first by default.

        Listed versions carry no manifest (``files`` is empty); use :meth:`get_version` or
        :meth:`resolve` for that.
        """
        t = self._online("list_versions")
        return Pager(
            lambda token: t.unary(
                t.metadata_stub.ListModelVersions,
                _convert.list_versions_request(
                    model, filter, order_by, page_size, show_deleted, token
                ),
            ),
            lambda page: page.model_versions,
        )

    def resolve(self, ref: str, *, as_of: datetime | None = None) -> model_version_pb2.ModelVersion:
        """The READY version a reference names, with its manifest.

        ``ref`` is ``name`` (latest READY), ``name@alias``, ``name:3``, ``name/versions/3``
        (each optionally prefixed ``models/``) or a version uid. ``as_of`` resolves aliases and
        "latest" as they were at that time (a naive datetime is UTC). In offline mode the
        answer comes from the references recorded by earlier pulls, or
        :class:`NotCachedError`.
        """
        if self.offline:
            return self.cache.resolve_offline(ref, as_of)
        t = self._transport
        return t.unary(t.metadata_stub.ResolveModelVersion, _convert.resolve_request(ref, as_of))

    def update_version(
        self,
        model: str,
        version: int,
        *,
        description: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> model_version_pb2.ModelVersion:
        """Change a version's description and/or labels (``labels`` replaces the whole map).

        Only the arguments given are sent; with neither, the version is returned unchanged.
        """
        t = self._online("update_version")
        request = _convert.update_version_request(model, version, description, labels)
        if request is None:
            return self.get_version(model, version)
        return t.unary(t.metadata_stub.UpdateModelVersion, request)

    def delete_version(self, model: str, version: int) -> model_version_pb2.ModelVersion:
        """Soft-delete a version (it becomes ``DELETED``; its aliases are removed)."""
        t = self._online("delete_version")
        return t.unary(
            t.metadata_stub.DeleteModelVersion, _convert.delete_version_request(model, version)
        )

    def diff(self, a_ref: str, b_ref: str) -> VersionDiff:
        """Params, metrics and files that differ from ``a_ref`` (old) to ``b_ref`` (new)."""
        return VersionDiff.between(self.resolve(a_ref), self.resolve(b_ref))

    # ------------------------------------------------------------------ aliases

    def set_alias(
        self, model: str, alias: str, version: int, *, expected_version: int | None = None
    ) -> alias_pb2.Alias:
        """Point ``alias`` at a READY version, creating the alias if needed.

        With ``expected_version`` the move only happens if the alias points there now (else
        :class:`ConflictError`, reason ``ALIAS_VERSION_MISMATCH``).
        """
        t = self._online("set_alias")
        return t.unary(
            t.metadata_stub.SetAlias,
            _convert.set_alias_request(model, alias, version, expected_version),
        )

    def delete_alias(self, model: str, alias: str) -> None:
        """Remove an alias; the version it pointed at is unchanged."""
        t = self._online("delete_alias")
        t.unary(t.metadata_stub.DeleteAlias, _convert.delete_alias_request(model, alias))

    def list_aliases(self, model: str) -> list[alias_pb2.Alias]:
        """Every alias of ``model``, in alias order."""
        t = self._online("list_aliases")
        parent = _convert.model_name(model)
        return list(
            Pager(
                lambda token: t.unary(
                    t.metadata_stub.ListAliases,
                    metadata_service_pb2.ListAliasesRequest(parent=parent, page_token=token),
                ),
                lambda page: page.aliases,
            )
        )

    # ------------------------------------------------------------------ events and audit

    def watch(
        self,
        model: str | None = None,
        *,
        after_event_id: str = "",
        event_types: Iterable[int | str] = (),
    ) -> WatchStream:
        """Iterate change events of ``model`` (or of every model) as they are committed.

        Without ``after_event_id`` the stream starts with the next event. If the connection
        drops (``UNAVAILABLE``: server restart, network) it reconnects with backoff from the
        last event received, so no event is missed or repeated; it keeps trying until closed.
        ``event_types`` takes enum values or names such as ``"ALIAS_MOVED"``. Close it (or use
        it as a context manager) to stop: that cancels the server stream, also from another
        thread.
        """
        t = self._online("watch")
        # Materialised once: validating a generator would otherwise leave nothing to watch.
        types = tuple(event_types)
        _convert.event_types(types)  # reject unknown names now, not on first next()
        return WatchStream(t, model, after_event_id, types)

    def list_audit_events(
        self,
        *,
        model: str = "",
        actor: str = "",
        start: datetime | None = None,
        end: datetime | None = None,
        order_by: str = "",
        page_size: int = 0,
    ) -> Pager[metadata_service_pb2.ListAuditEventsResponse, audit_event_pb2.AuditEvent]:
        """The audit log, newest first by default (``order_by="event_time asc"`` reverses it).

        ``start`` is inclusive, ``end`` exclusive; naive datetimes are UTC.
        """
        t = self._online("list_audit_events")
        return Pager(
            lambda token: t.unary(
                t.metadata_stub.ListAuditEvents,
                _convert.list_audit_events_request(
                    model, actor, start, end, order_by, page_size, token
                ),
            ),
            lambda page: page.audit_events,
        )

    def run_gc(
        self, *, dry_run: bool = False, grace_period: timedelta | None = None
    ) -> metadata_service_pb2.RunGarbageCollectionResponse:
        """Expire abandoned PENDING versions and delete unreferenced blobs.

        ``grace_period`` protects blobs younger than it (server default 48 h); ``dry_run``
        reports without deleting.
        """
        t = self._online("run_gc")
        return t.unary(
            t.metadata_stub.RunGarbageCollection, _convert.run_gc_request(dry_run, grace_period)
        )

    # ------------------------------------------------------------------ files

    def push(
        self,
        path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        model: str,
        params: Mapping[str, _convert.ParamPyValue] | None = None,
        metrics: Mapping[str, float] | None = None,
        labels: Mapping[str, str] | None = None,
        description: str = "",
        alias: str | None = None,
        lineage: bool = True,
        parallelism: int = 4,
        progress: Progress | None = None,
    ) -> model_version_pb2.ModelVersion:
        """Upload a file or folder as a new READY version of ``model`` and return it.

        The model is created if missing. Only files the store lacks are uploaded (by sha256),
        interrupted uploads resume, and the version becomes visible only once every file is
        in (two-phase commit). ``lineage`` records the git commit of ``path``; ``alias`` is set
        on the new version. ``progress`` is called from worker threads.
        """
        from modelregistry._push import push_model  # lazy: loads the transfer engine

        return push_model(
            self._online("push"),
            self.cache,
            path,
            model=model,
            params=params,
            metrics=metrics,
            labels=labels,
            description=description,
            alias=alias,
            lineage=lineage,
            parallelism=parallelism,
            progress=progress,
        )

    def pull(
        self,
        ref: str,
        dest: str | os.PathLike[str] | None = None,
        *,
        allow_patterns: Sequence[str] | str | None = None,
        ignore_patterns: Sequence[str] | str | None = None,
        parallelism: int = 4,
        progress: Progress | None = None,
    ) -> Path:
        """Download the version ``ref`` names and return the local folder holding its files.

        Files are verified by sha256 and kept in the cache, so pulling again downloads nothing;
        without ``dest`` the folder is a snapshot inside the cache. ``allow_patterns`` /
        ``ignore_patterns`` are globs on manifest paths. Offline, only cached refs work.
        """
        from modelregistry._pull import pull_model  # lazy: loads the transfer engine

        return pull_model(
            None if self.offline else self._transport,
            self.cache,
            ref,
            dest=dest,
            allow_patterns=allow_patterns,
            ignore_patterns=ignore_patterns,
            parallelism=parallelism,
            progress=progress,
            offline=self.offline,
        )


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
    """

    def __init__(
        self,
        transport: Transport,
        model: str | None,
        after_event_id: str,
        event_types: tuple[int | str, ...],
    ) -> None:
        self._transport = transport
        self._model = model
        self._event_types = event_types
        self.last_event_id = after_event_id
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
            raise CancelledError(
                "watch stopped: the client was closed", reason="CLIENT_CLOSED"
            ) from None
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

    def wait_subscribed(self) -> str:
        """Block until the server has subscribed this stream; return the id it starts after.

        Every change committed after this returns will be yielded. Call it before reading the
        state you act on (``pull("m@production")``, say): a change between the read and the
        subscription would otherwise be missed. Raises the typed error if the server refuses
        the watch or cannot be reached.
        """
        with self._lock:
            if self._closed.is_set():
                raise CancelledError("the watch is closed", reason="WATCH_CLOSED")
            call = self._call if self._call is not None else self._open_call()
        if not self._note_start(call) and call.code() not in (None, grpc.StatusCode.OK):
            try:
                next(iter(call))  # the call ended without headers: iterating raises why
            except grpc.RpcError as exc:
                raise from_rpc_error(exc, self._transport.target) from None
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
                self._note_start(call)
                for event in call:
                    self.last_event_id = event.event_id
                    backoffs = policy.backoffs()  # progress made: start patient again
                    yield event
                reason = "the server ended the stream"
            except grpc.RpcError as exc:
                if self._closed.is_set():
                    return
                error = from_rpc_error(exc, self._transport.target)
                if not isinstance(error, UnavailableError):
                    raise error from None
                reason = error.message
            finally:
                # Reached also when the consumer drops or closes the generator mid-stream.
                call.cancel()
                with self._lock:
                    if self._call is call:
                        self._call = None  # the next round opens a new call
            if self._closed.wait(reconnect_delay(policy, backoffs, reason)):
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
