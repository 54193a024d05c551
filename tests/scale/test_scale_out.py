"""The registry scaled out on this machine keeps its promises while its parts die, one at a time.

Topology (``cluster.py``): MinIO in distributed mode (4 nodes, one erasure set), PostgreSQL
primary + synchronous hot standby, 2 ``serve metadata`` and 2 ``serve artifacts`` replicas; the
SDK is given every replica's address (round-robin, client-side health checks).

Under the steady load of ``load.py`` the test injects, one at a time:

1. SIGKILL of MinIO node 1 (the node artifact replica 1 talks to);
2. SIGKILL of artifact replica 1 while a two-file push streams one file to each replica;
3. SIGKILL of metadata replica 1 with 4 watches open (2 on each replica);
4. SIGKILL of the PostgreSQL primary, and 1 s later ``pg_ctl promote`` of the standby.

After each: every push acknowledged during the phase is READY and pulls with the right bytes
(after the failover: every push of the whole run), every watcher received every event the
ledger implies, every failed operation failed with a retryable code (never INTERNAL), and
every kind of operation succeeded again within ``RESUME_BOUND_S`` (after the promotion for the
failover). ``RESUME_BOUND_S`` is 10 s, with one exception that is MinIO's design, not the
registry's: after a MinIO node dies, an object key whose write that node was coordinating stays
locked by the dead node until every survivor's lock sweep drops it (``lockValidityDuration`` 1
min, swept every minute: 60-120 s, not tunable), and a read or write of that key waits for it.
Blobs are content-addressed, so the other pusher's identical ``config.json`` (and a pull of it)
needs the very key; pushes and pulls get ``MINIO_STALE_LOCK_BOUND_S`` in that phase, and the
phase lasts until they resumed, so that no stale lock reaches the next fault. Resolves and
watches (no S3) keep 10 s. The killed part is restarted before the next fault.
``make scale-test`` runs it and prints the table (deploy/docs/scale-out.md holds one from a
real run).
"""

from __future__ import annotations

import faulthandler
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelregistry import Client, RegistryError
from modelregistry._endpoints import ARTIFACT_SERVICE
from tests.scale.cluster import Topology, start_topology, wait_service_serving
from tests.scale.load import Acked, Ledger, Load, WatchLog, describe, missing_events
from tests.scale.report import KINDS, FaultResult, summarize, table, time_to_resume

pytestmark = pytest.mark.timeout(900)

STEADY_S = 3.0  # load before each fault
AFTER_S = 10.0  # load after each fault (after the promotion for the failover)
RESUME_BOUND_S = 10.0
# MinIO's stale-lock sweep (up to 120 s; measured 99.5-121.8 s) plus the SDK's retry backoff.
MINIO_STALE_LOCK_BOUND_S = 150.0
BOUNDS = {kind: RESUME_BOUND_S for kind in KINDS}
MINIO_NODE_BOUNDS = {**BOUNDS, "push": MINIO_STALE_LOCK_BOUND_S, "pull": MINIO_STALE_LOCK_BOUND_S}
BIG_FILE_BYTES = 24 * 1024 * 1024
PROMOTE_AFTER_S = 1.0  # an orchestrator's detection time, shortened
VERIFY_ATTEMPTS = 3  # reads of an acknowledged version before it counts as lost


@dataclass
class Run:
    """What the phases share."""

    topology: Topology
    workdir: Path
    load: Load
    log: WatchLog
    verifier: Client


@pytest.fixture
def topology(request: pytest.FixtureRequest) -> Iterator[tuple[Topology, Path]]:
    # Under /tmp and searchable by others: PostgreSQL runs as its own user when we are root.
    workdir = Path(tempfile.mkdtemp(prefix="mr-scale-"))
    workdir.chmod(0o755)
    started = start_topology(workdir)
    try:
        yield started, workdir
    finally:
        started.stop()
        if request.session.testsfailed:
            # The logs say what went wrong (the replicas', MinIO's, PostgreSQL's); the data
            # (drives, clusters, caches) is what takes the space.
            for bulky in ("pgdata", "node[0-9]", "cache", "data"):
                for path in workdir.rglob(bulky):
                    shutil.rmtree(path, ignore_errors=True)
            print(f"the logs of the failed run are in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _lost(run: Run, pushes: list[Acked]) -> int:
    """How many acknowledged pushes are not READY with their bytes (pulled with a fresh cache).

    A check that cannot read a version (the fault is still in place: a call may time out) asks
    again, up to ``VERIFY_ATTEMPTS`` times, as a client would: only a version that is not READY,
    has other bytes, or stays unreadable counts as lost. Each failed attempt is printed.
    """
    lost = 0
    for acked in pushes:
        model, _, number = acked.version.removeprefix("models/").partition("/versions/")
        for attempt in range(1, VERIFY_ATTEMPTS + 1):
            try:
                if run.verifier.get_version(model, int(number)).state != 2:  # READY
                    lost += 1
                    break
                before = len(run.load.ledger.mismatches)
                run.load.verify_pull(run.verifier, acked)
                lost += len(run.load.ledger.mismatches) - before
                break
            except RegistryError as error:
                print(f"verify {acked.version} (attempt {attempt}): {describe(error)}")
        else:
            lost += 1
    return lost


def _phase(
    run: Run,
    fault: str,
    inject: Callable[[], float],
    verify_all: bool = False,
    bounds: dict[str, float] = BOUNDS,
) -> FaultResult:
    """Steady load, the fault, ``AFTER_S`` of load (longer, up to the largest bound, while a
    kind has not resumed), then the ledger checks."""
    ledger = run.load.ledger
    first_push = len(ledger.pushes)
    reconnects, resumes = run.log.watch_reconnects, run.log.upload_resumes
    time.sleep(STEADY_S)
    fault_at = time.monotonic()
    resume_from = inject()
    time.sleep(max(0.0, resume_from + AFTER_S - time.monotonic()))
    give_up = resume_from + max(bounds.values()) + 1.0
    while time.monotonic() < give_up:
        with ledger.lock:
            resumed = time_to_resume(list(ledger.ops), resume_from)
        if max(resumed.values()) < float("inf"):
            break
        time.sleep(1.0)
    end = time.monotonic()
    with ledger.lock:
        ops = list(ledger.ops)
        pushes = list(ledger.pushes if verify_all else ledger.pushes[first_push:])
    result = summarize(fault, ops, fault_at, resume_from, end, bounds)
    result.acked = len(pushes)
    result.lost = _lost(run, pushes)
    result.missed_events = sum(missing_events(run.load, timeout=15))
    result.watch_reconnects = run.log.watch_reconnects - reconnects
    result.upload_resumes = run.log.upload_resumes - resumes
    print(f"{fault}: {result}", flush=True)
    if result.resumed_s > RESUME_BOUND_S:
        # Where the clients wait (which call, on which worker) is the first clue to a stall.
        faulthandler.dump_traceback(all_threads=True)
    return result


class _Halfway:
    """A push's progress that says when a third of its bytes went out (the push reports its
    hashing first, then its upload: only the upload, "pushing …", counts)."""

    def __init__(self) -> None:
        self.total = 0
        self.sent = 0
        self.uploading = False
        self.reached = threading.Event()
        self._lock = threading.Lock()

    def start(self, total_bytes: int, total_files: int, description: str) -> None:
        with self._lock:
            self.total, self.sent = total_bytes, 0
            self.uploading = description.startswith("pushing")

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self.sent += nbytes
            if self.uploading and self.total and self.sent * 3 >= self.total:
                self.reached.set()

    def file_done(self, path: str) -> None:
        """Nothing to do."""

    def finish(self) -> None:
        """Nothing to do."""


def _kill_artifact_mid_upload(
    run: Run, outcome: list[str], killed: list[int]
) -> Callable[[], float]:
    """The injector of fault 2: start a two-file push (one Write stream per replica, as the
    round-robin alternates), and kill a replica once a third of the bytes went out.

    The round-robin skips a replica whose health check says NOT_SERVING (artifact replica 1
    may, briefly, while its MinIO node heals from fault 1), so a kill can find no stream of
    this push: then the replica is restarted and the other one is killed in the next try.
    ``killed`` gets the index of the replica left dead.
    """
    # Its own client, warmed up by a push now: a fresh channel sends its first calls to the
    # first replica that answers.
    client = run.load.client("big")
    run.load.push(client, "scale-big", {"a.bin": b"warm-up a", "b.bin": b"warm-up b"})

    def push(progress: _Halfway) -> None:
        files = {"a.bin": os.urandom(BIG_FILE_BYTES), "b.bin": os.urandom(BIG_FILE_BYTES)}
        try:
            # Through Write: a direct upload (the default on MinIO) would not touch the replica
            # this fault kills. The other pushers of the load go direct.
            run.load.push(
                client, "scale-big", files, parallelism=2, progress=progress, direct_upload=False
            )
            outcome.append("ok")
        except RegistryError as error:
            outcome.append(describe(error))

    def inject() -> float:
        for attempt in range(4):
            victim = run.topology.artifacts[attempt % 2]
            progress = _Halfway()
            resumed = len(run.log.resumed_files)
            thread = threading.Thread(target=push, args=(progress,), daemon=True)
            thread.start()
            assert progress.reached.wait(60), "the big push never got a third of its bytes out"
            killed_at = time.monotonic()
            victim.kill()
            thread.join(120)
            hit = {"a.bin", "b.bin"} & set(run.log.resumed_files[resumed:])
            if hit:
                killed.append(attempt % 2)
                files = ", ".join(sorted(hit))
                print(
                    f"artifact replica {attempt % 2 + 1} killed (try {attempt + 1}) while it "
                    f"received {files} of the push; resumed on the other"
                )
                return killed_at
            victim.start(timeout=90)  # it held no stream of the push: try the other one
        raise AssertionError("four kills in a row found no upload of the push on their replica")

    return inject


def _kill_postgres_primary(run: Run) -> float:
    pair = run.topology.postgres
    pair.kill_primary()
    time.sleep(PROMOTE_AFTER_S)
    return pair.promote()


def _run_faults(run: Run) -> list[FaultResult]:
    topology = run.topology
    node = topology.minio.nodes[0]
    results = []

    def kill_node() -> float:
        topology.minio.kill(node)
        return time.monotonic()

    results.append(_phase(run, "MinIO node 1 of 4 killed", kill_node, bounds=MINIO_NODE_BOUNDS))
    topology.minio.start_node(node)
    topology.minio.wait_healthy(via=0)
    # Else the client-side health checks keep every upload off replica 1, which fault 2 kills.
    wait_service_serving(topology.artifacts[0].target, ARTIFACT_SERVICE)

    big_push: list[str] = []
    victim: list[int] = []
    inject = _kill_artifact_mid_upload(run, big_push, victim)
    results.append(_phase(run, "artifact replica killed mid-upload", inject))
    assert set(big_push) == {"ok"}, f"a push interrupted by the kill failed: {big_push}"
    topology.artifacts[victim[0]].start(timeout=90)

    def kill_metadata() -> float:
        topology.metadata[0].kill()
        return time.monotonic()

    results.append(_phase(run, "metadata replica killed, watches open", kill_metadata))
    topology.metadata[0].start(timeout=90)

    results.append(
        _phase(
            run,
            "PostgreSQL primary killed, standby promoted",
            lambda: _kill_postgres_primary(run),
            verify_all=True,
        )
    )
    return results


def test_scale_out_rides_out_one_fault_at_a_time(topology: tuple[Topology, Path]) -> None:
    started, workdir = topology
    log = WatchLog()
    logging.getLogger("modelregistry").addHandler(log)
    load = Load(started, workdir, Ledger())
    verifier = load.client("verify")
    load.start()
    try:
        results = _run_faults(Run(started, workdir, load, log, verifier))
    finally:
        load.stop()
        logging.getLogger("modelregistry").removeHandler(log)
    print("\n" + table(results), flush=True)
    errors = started.server_errors()
    print(
        f"internal errors in the server logs:\n{errors}" if errors else "no internal error logged"
    )

    assert not errors, "a replica answered INTERNAL (see its log above)"
    assert not load.watch_errors, load.watch_errors
    assert not load.ledger.mismatches, load.ledger.mismatches
    for r in results:
        assert r.lost == 0, f"{r.fault}: {r.lost} acknowledged pushes lost"
        assert r.missed_events == 0, f"{r.fault}: {r.missed_events} events missed"
        assert not r.unexpected_failures(), f"{r.fault}: {r.failed}"
        assert not r.over_bound(), f"{r.fault}: resumed late: {r.over_bound()}"
        assert r.acked > 0, f"{r.fault}: no push was acknowledged"
    # Each fault hit what it was meant to: an upload in flight, watches open.
    assert results[1].upload_resumes >= 1, "the artifact replica died with no upload on it"
    assert results[2].watch_reconnects >= 1, "no watch was open on the killed replica"
