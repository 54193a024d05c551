"""A steady, bounded load on the scaled-out registry through the SDK, and the ledger it keeps.

Workers (threads, each with SDK clients given every replica's address):

- 2 pushers: a small two-file version of ``scale-<n>`` at a time, moving alias ``live`` to it;
- 1 puller: pulls the newest acknowledged version it has not pulled, into a fresh folder, and
  checks every file's sha256 against the ledger;
- 1 resolver: ``scale-0@live`` in a loop;
- 4 watchers on 2 clients (so each client's two streams go to different replicas): every
  ``VERSION_READY`` and ``ALIAS_MOVED`` event of every model.

Every operation is recorded with its start, end and error (after the SDK's own retries). The
ledger holds every push the registry acknowledged (its files' digests) and the events it
implies, which each watcher must have received.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from modelregistry import Client, RegistryError
from modelregistry.metadata.v1 import model_event_pb2
from tests.scale.cluster import Topology
from tests.support.auth import ADMIN_TOKEN

VERSION_READY = model_event_pb2.MODEL_EVENT_TYPE_VERSION_READY
ALIAS_MOVED = model_event_pb2.MODEL_EVENT_TYPE_ALIAS_MOVED
ALIAS = "live"
PUSHERS = 2
WATCHERS_PER_CLIENT = 2
WATCH_CLIENTS = 2
SMALL_FILE_BYTES = 64 * 1024
# (type, version name, alias or "")
Event = tuple[int, str, str]


@dataclass(frozen=True)
class Op:
    """One operation of the load and how it ended (``error`` empty: it succeeded)."""

    kind: str
    started: float
    ended: float
    error: str = ""


@dataclass(frozen=True)
class Acked:
    """A push the registry acknowledged: the version and the sha256 of each file pushed."""

    version: str
    files: dict[str, str]
    acked_at: float


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def describe(error: BaseException) -> str:
    """``CODE/REASON`` of an SDK error, the class name of anything else."""
    if isinstance(error, RegistryError):
        code = error.code.name if error.code is not None else type(error).__name__
        described = f"{code}/{error.reason}" if error.reason else code
        # The message too for what should never happen (a retryable outage needs no more).
        return described if code in ("UNAVAILABLE", "ABORTED") else f"{described}: {error}"
    return f"{type(error).__name__}: {error}"


@dataclass
class Ledger:
    """What the registry acknowledged, and what every watcher must therefore have seen."""

    pushes: list[Acked] = field(default_factory=list)
    events: set[Event] = field(default_factory=set)
    ops: list[Op] = field(default_factory=list)
    # Pulled bytes that did not match the ledger (must stay empty).
    mismatches: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, started: float, error: str = "") -> None:
        """Note one operation's outcome."""
        with self.lock:
            self.ops.append(Op(kind, started, time.monotonic(), error))

    def acknowledge(self, version: str, files: dict[str, str], alias: str | None) -> None:
        """Note an acknowledged push and the events it implies."""
        with self.lock:
            self.pushes.append(Acked(version, files, time.monotonic()))
            self.events.add((VERSION_READY, version, ""))
            if alias:
                model = version.partition("/versions/")[0]
                self.events.add((ALIAS_MOVED, version, f"{model}/aliases/{alias}"))


class WatchLog(logging.Handler):
    """Counts the SDK's warnings that a watch reconnected and that an upload resumed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.watch_reconnects = 0
        self.upload_resumes = 0
        self.resumed_files: list[str] = []  # the path of each resumed upload, in order

    def emit(self, record: logging.LogRecord) -> None:
        """Count one warning of the ``modelregistry`` logger."""
        message = record.getMessage()
        if message.startswith("watch:") and "reconnecting" in message:
            self.watch_reconnects += 1
        elif message.startswith("upload of ") and "resuming" in message:
            self.upload_resumes += 1
            self.resumed_files.append(message.removeprefix("upload of ").split(" ")[0])


class Load:
    """The workers of the module docstring; :meth:`start`, then :meth:`stop`."""

    def __init__(self, topology: Topology, workdir: Path, ledger: Ledger) -> None:
        self._topology = topology
        self._workdir = workdir
        self.ledger = ledger
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._clients: list[Client] = []
        self.watchers: list[set[Event]] = []
        self.watch_errors: list[str] = []
        self._subscribed: list[threading.Event] = []

    def client(self, name: str) -> Client:
        """A new SDK client of every replica, with its own cache."""
        client = Client(
            self._topology.metadata_target, artifact_target=self._topology.artifact_target,
            token=ADMIN_TOKEN, cache_dir=self._workdir / "cache" / name, offline=False,
        )  # fmt: skip
        self._clients.append(client)
        return client

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def start(self) -> None:
        """Start the watchers (and wait until each is subscribed), then the other workers."""
        for c in range(WATCH_CLIENTS):
            client = self.client(f"watch{c}")
            # A fresh channel sends its first calls to the first replica that answers: let it
            # connect to both first, so that its two watches go to different replicas.
            next(iter(client.list_models(page_size=1)), None)
            time.sleep(1.0)
            for w in range(WATCHERS_PER_CLIENT):
                seen: set[Event] = set()
                subscribed = threading.Event()
                self.watchers.append(seen)
                self._subscribed.append(subscribed)
                self._spawn(
                    f"watch{c}.{w}", functools.partial(self._watch, client, seen, subscribed)
                )
        for subscribed in self._subscribed:
            assert subscribed.wait(30), "a watch did not subscribe within 30 s"
        # scale-0@live must exist before the resolver starts.
        self.push(self.client("seed"), "scale-0", {"model.bin": b"seed"})
        for p in range(PUSHERS):
            client = self.client(f"push{p}")
            self._spawn(f"push{p}", functools.partial(self._pusher, client, p))
        self._spawn("pull", functools.partial(self._puller, self.client("pull")))
        self._spawn("resolve", functools.partial(self._resolver, self.client("resolve")))

    def stop(self) -> None:
        """Stop every worker and close the clients (which ends the watches)."""
        self.stopping.set()
        for thread in self._threads:
            if not thread.name.startswith("watch"):
                thread.join(60)
        for client in self._clients:
            client.close()
        for thread in self._threads:
            thread.join(10)

    def _watch(self, client: Client, seen: set[Event], subscribed: threading.Event) -> None:
        stream = client.watch(event_types=[VERSION_READY, ALIAS_MOVED])
        try:
            stream.wait_subscribed()
            subscribed.set()
            for event in stream:
                seen.add((event.type, event.model_version, event.alias))
        except RegistryError as error:
            if not self.stopping.is_set():
                self.watch_errors.append(describe(error))

    def _timed(self, kind: str, work: Callable[[], object]) -> None:
        started = time.monotonic()
        try:
            work()
        except (RegistryError, OSError) as error:
            self.ledger.record(kind, started, describe(error))
            time.sleep(0.1)  # a failing registry is not hammered in a tight loop
        else:
            self.ledger.record(kind, started)

    def push(self, client: Client, model: str, files: dict[str, bytes], **kwargs: object) -> None:
        """Push ``files`` as a new version of ``model`` with alias ``live``; ledger it if acked."""
        folder = self._workdir / "push" / f"{model}-{time.monotonic_ns()}"
        folder.mkdir(parents=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        try:
            version = client.push(folder, model=model, alias=ALIAS, lineage=False, **kwargs)  # type: ignore[arg-type]
            digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
            self.ledger.acknowledge(version.name, digests, ALIAS)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _pusher(self, client: Client, n: int) -> None:
        i = 0
        while not self.stopping.is_set():
            i += 1
            files = {"model.bin": os.urandom(SMALL_FILE_BYTES), "config.json": b'{"i": %d}' % i}
            self._timed("push", functools.partial(self.push, client, f"scale-{n}", files))
            time.sleep(0.05)

    def _puller(self, client: Client) -> None:
        pulled = 0
        while not self.stopping.is_set():
            with self.ledger.lock:
                todo = self.ledger.pushes[pulled:]
            if not todo:
                time.sleep(0.05)
                continue
            pulled += len(todo)
            self._timed("pull", functools.partial(self.verify_pull, client, todo[-1]))

    def verify_pull(self, client: Client, acked: Acked) -> None:
        """Pull ``acked`` into a fresh folder and compare each file with the ledger."""
        dest = self._workdir / "pulled" / f"{time.monotonic_ns()}"
        try:
            model, _, number = acked.version.removeprefix("models/").partition("/versions/")
            folder = client.pull(f"{model}:{number}", dest)
            for name, digest in acked.files.items():
                if sha256_file(folder / name) != digest:
                    with self.ledger.lock:
                        self.ledger.mismatches.append(f"{acked.version}/{name}")
        finally:
            shutil.rmtree(dest, ignore_errors=True)

    def _resolver(self, client: Client) -> None:
        while not self.stopping.is_set():
            self._timed("resolve", functools.partial(client.resolve, f"scale-0@{ALIAS}"))
            time.sleep(0.02)


def missing_events(load: Load, timeout: float) -> list[int]:
    """Per watcher, how many ledger events it has not received, after waiting up to ``timeout``
    for late deliveries."""
    deadline = time.monotonic() + timeout
    # What was acknowledged now: later pushes keep coming and are checked at the next phase.
    with load.ledger.lock:
        expected = set(load.ledger.events)
    while True:
        missing = [len(expected - seen) for seen in load.watchers]
        if not any(missing) or time.monotonic() > deadline:
            return missing
        time.sleep(0.2)
