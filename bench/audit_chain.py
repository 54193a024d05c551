"""Audit hash chain benchmark: what chaining every audit event costs the writes that make them.

Run it with ``.venv/bin/python bench/audit_chain.py`` (or ``make bench-audit BENCH_ARGS=...``).
It starts a throwaway PostgreSQL (durable, fsync on, as in production; ``--no-fsync`` turns it
off) and stops everything again, also on Ctrl-C. Three parts:

1. **The target** (issue 13): 200 concurrent alias moves (``SetAlias``, each audited) against
   two registry server *subprocesses* on the same PostgreSQL, each with its own database: one
   with the hash chain on (the default ``--audit-chain-interval 1``: a pass ~20 ms after the
   server's own appends, and every second), one with it off (``--audit-chain-interval 0``: events
   stay unchained). The 200 moves go to 200 models (one alias each, moved between its two
   versions), so they really run concurrently in PostgreSQL instead of queueing on one
   version's row lock. A batch is 200 calls at once; its wall time is what is compared.
   Rounds alternate which server goes first. Reported: median batch time on ÷ off (the
   target: ≤ 1.3), server CPU per move, and how long after a batch the last event was chained.
2. **The two designs at the SQL level**: 200 concurrent transactions, each an UPDATE plus
   its audit event (the shape of every audited write), over a pool of 100 connections:
   (a) no chain; (b) the design chosen, events inserted unchained and linked by the
   background chainer (the server's own ``AuditChainer`` runs in this process); (c) the
   alternative, one advisory lock taken at the end of each audited transaction, under which
   it reads the head, inserts its event with position and hash and moves the head, so the
   lock is held through the commit. Reported: transactions per second and their ratios.
3. **Chaining and verifying a backlog**: 20,000 events appended unchained, then chained in
   one go (events per second), then ``VerifyAuditLog``'s walk over them (µs per event).

The Markdown report goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import grpc

from modelregistry.artifact.v1 import artifact_service_pb2 as apb
from modelregistry.artifact.v1 import artifact_service_pb2_grpc, blob_pb2
from modelregistry.metadata.v1 import metadata_service_pb2 as mpb
from modelregistry.metadata.v1 import metadata_service_pb2_grpc, model_pb2, model_version_pb2
from modelregistry_server.common.adapters import audit_log
from modelregistry_server.common.adapters.audit_log import MIGRATIONS_DIR as AUDIT_MIGRATIONS
from modelregistry_server.common.adapters.audit_log.chain import (
    AuditChainer,
    chain_pending,
    event_fields,
)
from modelregistry_server.common.adapters.db import Database, create_pool, ensure_database
from modelregistry_server.common.adapters.embedded_postgres import EmbeddedPostgres
from modelregistry_server.common.adapters.migrations import apply_migrations
from modelregistry_server.common.kernel.audit import AuditEntry
from modelregistry_server.common.kernel.audit_chain import link_hash
from modelregistry_server.metadata.adapters.postgres.events import PostgresAuditLog
from modelregistry_server.metadata.app.audit_chain import verify_chain

if TYPE_CHECKING:
    from modelregistry_server.common.adapters.db import Connection

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
from bench._support import (  # noqa: E402
    CALL_METADATA,
    CPUS,
    ServerProcess,
    authenticated_channel,
    cpu_model,
    log,
    proc_cpu,
    rotated,
    scratch_dir,
    unwind_on_sigterm,
    verdict,
)

from tests.support.artifacts import sha256_hex, write_requests  # noqa: E402

TARGET_RATIO = 1.3  # issue 13: 200 concurrent alias moves, chain on ÷ off ≤ 1.3
MOVES = 200
CALL_TIMEOUT_S = 60.0
MODES = ("on", "off")

# The SQL of part 2 (a benchmark's own table; the audit schema is the registry's own).
CREATE_ROWS = "CREATE TABLE IF NOT EXISTS bench_rows (id int PRIMARY KEY, v bigint NOT NULL)"
FILL_ROWS = (
    "INSERT INTO bench_rows SELECT g, 0 FROM generate_series(1, $1) g ON CONFLICT DO NOTHING"
)
UPDATE_ROW = "UPDATE bench_rows SET v = v + 1 WHERE id = $1"
LOCK_CHAIN_TAIL = "SELECT pg_advisory_xact_lock(7461, 0)"
HEAD = "SELECT seq, hash FROM audit.chain_head"
INSERT_RETURNING = (
    "INSERT INTO audit.events (actor, method, resource, model_id, before, after, request_id) "
    "VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7) RETURNING *"
)
LINK_EVENT = "UPDATE audit.events SET seq = $2, prev_hash = $3, hash = $4 WHERE id = $1"
MOVE_HEAD = "UPDATE audit.chain_head SET seq = $1, hash = $2"
UNCHAINED = "SELECT count(*) FROM audit.events WHERE seq IS NULL"


def _entry(i: int) -> AuditEntry:
    return AuditEntry(
        "bench", "SetAlias", f"models/m{i}/aliases/production", f"m{i}",
        {"version": f"models/m{i}/versions/1"}, {"version": f"models/m{i}/versions/2"}, None,
    )  # fmt: skip


# ----------------------------------------------------------------------------- part 1


def setup_models(target: str, models: int) -> None:
    """``models`` models, each with two READY versions (one shared blob) and alias ``a``."""
    data = b"audit chain bench weights"
    digest = sha256_hex(data)
    with authenticated_channel(target) as channel:
        meta = metadata_service_pb2_grpc.MetadataServiceStub(channel)
        art = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
        blob = blob_pb2.BlobRef(sha256=digest, size_bytes=len(data))
        session = art.CreateUploadSession(apb.CreateUploadSessionRequest(blob=blob))
        if not session.complete:
            art.Write(write_requests(session.name, data), timeout=CALL_TIMEOUT_S)
        files = [model_version_pb2.ManifestFile(path="w", sha256=digest, size_bytes=len(data))]
        for i in range(models):
            meta.CreateModel(mpb.CreateModelRequest(model_id=f"m{i}", model=model_pb2.Model()))
            for _ in range(2):
                version = meta.CreateModelVersion(
                    mpb.CreateModelVersionRequest(parent=f"models/m{i}")
                )
                meta.CommitModelVersion(
                    mpb.CommitModelVersionRequest(name=version.name, files=files)
                )
            meta.SetAlias(
                mpb.SetAliasRequest(
                    model=f"models/m{i}", alias="a", version=f"models/m{i}/versions/1"
                )
            )


async def move_batch(stub: metadata_service_pb2_grpc.MetadataServiceAsyncStub, to: int) -> float:
    """Move the 200 aliases at once (each to version ``to``); the batch's wall seconds."""

    async def move(i: int) -> None:
        request = mpb.SetAliasRequest(
            model=f"models/m{i}", alias="a", version=f"models/m{i}/versions/{to}"
        )
        await stub.SetAlias(request, timeout=CALL_TIMEOUT_S, metadata=CALL_METADATA)

    started = time.perf_counter()
    await asyncio.gather(*(move(i) for i in range(MOVES)))
    return time.perf_counter() - started


async def chain_lag(database_url: str, give_up_s: float = 10.0) -> float:
    """Seconds until no event is left unchained (measured right after a batch)."""
    conn = await asyncpg.connect(database_url)
    try:
        started = time.perf_counter()
        while await conn.fetchval(UNCHAINED):
            if time.perf_counter() - started > give_up_s:
                return float("inf")
            await asyncio.sleep(0.005)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def part_one(
    servers: dict[str, ServerProcess], urls: dict[str, str], rounds: int, batches: int
) -> dict[str, object]:
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpu: dict[str, float] = dict.fromkeys(MODES, 0.0)
    lags: list[float] = []
    channels = {mode: grpc.aio.insecure_channel(servers[mode].target) for mode in MODES}
    stubs = {m: metadata_service_pb2_grpc.MetadataServiceStub(c) for m, c in channels.items()}
    try:
        for mode in MODES:  # warm-up: connections, caches, the first chain passes
            for to in (2, 1):
                await move_batch(stubs[mode], to)
        for round_no in range(rounds):
            for mode in rotated(MODES, round_no):
                before = proc_cpu(servers[mode].process)
                for batch in range(batches):
                    times[mode].append(await move_batch(stubs[mode], 2 - batch % 2))
                    if mode == "on":
                        lags.append(await chain_lag(urls[mode]))
                cpu[mode] += proc_cpu(servers[mode].process) - before
            log(f"round {round_no + 1}/{rounds}: median on {statistics.median(times['on']):.3f} s, "
                f"off {statistics.median(times['off']):.3f} s")  # fmt: skip
    finally:
        for channel in channels.values():
            await channel.close(None)
    moves = rounds * batches * MOVES
    return {"times": times, "cpu_ms": {m: 1000 * cpu[m] / moves for m in MODES}, "lags": lags}


# ----------------------------------------------------------------------------- part 2


async def _plain(conn: Connection, i: int) -> None:
    async with conn.transaction():
        await conn.execute(UPDATE_ROW, i)
        await audit_log.append(conn, _entry(i))


async def _serialised(conn: Connection, i: int) -> None:
    """The alternative: link the event inside the writing transaction, under one lock."""
    async with conn.transaction():
        await conn.execute(UPDATE_ROW, i)
        await conn.execute(LOCK_CHAIN_TAIL)  # as late as possible: held until the commit
        head = await conn.fetchrow(HEAD)
        assert head is not None
        entry = _entry(i)
        row = await conn.fetchrow(
            INSERT_RETURNING, entry.actor, entry.method, entry.resource, entry.model_id,
            '{"version": "v1"}', '{"version": "v2"}', None,
        )  # fmt: skip
        assert row is not None
        digest = link_hash(bytes(head["hash"]), event_fields(row).canonical())
        await conn.execute(LINK_EVENT, row["id"], head["seq"] + 1, bytes(head["hash"]), digest)
        await conn.execute(MOVE_HEAD, head["seq"] + 1, digest)


async def _run_writers(
    pool: asyncpg.Pool, write: Callable[[Connection, int], Awaitable[None]], seconds: float
) -> float:
    """200 writers doing ``write`` back to back for ``seconds``; transactions per second."""
    done = 0
    stop = time.perf_counter() + seconds

    async def writer(i: int) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            async with pool.acquire() as conn:
                await write(conn, i + 1)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(writer(i) for i in range(MOVES)))
    return done / (time.perf_counter() - started)


async def part_two(url: str, seconds: float, rounds: int) -> dict[str, list[float]]:
    pool = await create_pool(url, min_size=100, max_size=100)
    database = Database(pool)
    async with pool.acquire() as conn:
        await apply_migrations(conn, "audit", AUDIT_MIGRATIONS)
        await conn.execute(CREATE_ROWS)
        await conn.execute(FILL_ROWS, MOVES)
    rates: dict[str, list[float]] = {"none": [], "chainer": [], "serialised": []}
    try:
        for round_no in range(rounds):
            for design in rotated(list(rates), round_no):
                chainer: asyncio.Task[None] | None = None
                if design == "chainer":
                    chainer = asyncio.create_task(AuditChainer(database, 1.0).run_forever())
                write = _serialised if design == "serialised" else _plain
                try:
                    rates[design].append(await _run_writers(pool, write, seconds))
                finally:
                    if chainer is not None:
                        chainer.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await chainer
                await chain_pending(database, wait=True)  # leave no backlog to the next design
            medians = ", ".join(f"{d} {statistics.median(r):.0f}/s" for d, r in rates.items())
            log(f"SQL round {round_no + 1}/{rounds}: {medians}")
    finally:
        await pool.close()
    return rates


# ----------------------------------------------------------------------------- part 3


async def part_three(url: str, events: int) -> dict[str, float]:
    pool = await create_pool(url, min_size=2, max_size=4)
    database = Database(pool)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, "audit", AUDIT_MIGRATIONS)
        async with pool.acquire() as conn:
            for start in range(0, events, 1000):
                async with conn.transaction():
                    for i in range(start, min(start + 1000, events)):
                        await audit_log.append(conn, _entry(i))
        started = time.perf_counter()
        chained = await chain_pending(database, wait=True)
        chain_s = time.perf_counter() - started
        started = time.perf_counter()
        report = await verify_chain(PostgresAuditLog(database), None)
        verify_s = time.perf_counter() - started
        assert report.intact, report.problem
    finally:
        await pool.close()
    return {
        "chained": chained,
        "chain_per_s": chained / chain_s,
        "verified": report.count,
        "verify_us": 1e6 * verify_s / report.count,
    }


# ----------------------------------------------------------------------------- report


def report(args: argparse.Namespace, one: dict[str, object], two: dict[str, list[float]] | None,
           three: dict[str, float] | None) -> str:  # fmt: skip
    times: dict[str, list[float]] = one["times"]  # type: ignore[assignment]
    cpu: dict[str, float] = one["cpu_ms"]  # type: ignore[assignment]
    lags: list[float] = one["lags"]  # type: ignore[assignment]
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    ratio = on / off
    lines = [
        "## Audit hash chain",
        "",
        f"{platform.node()}: {CPUS} CPUs ({cpu_model()}), Python {platform.python_version()}; "
        f"PostgreSQL {'durable (fsync on)' if args.fsync else 'fsync off'}; "
        f"{args.rounds} rounds x {args.batches} batches of {MOVES} concurrent moves per server.",
        "",
        "| 200 concurrent `SetAlias` (200 models) | median batch | per move "
        "| server CPU per move |",
        "|---|---|---|---|",
        f"| chain off (`--audit-chain-interval 0`) | {off * 1000:.0f} ms | "
        f"{off * 1000 / MOVES:.2f} ms | {cpu['off']:.2f} ms |",
        f"| chain on (default) | {on * 1000:.0f} ms | {on * 1000 / MOVES:.2f} ms | "
        f"{cpu['on']:.2f} ms |",
        "",
        f"**On ÷ off: {ratio:.2f}** (target ≤ {TARGET_RATIO}: {verdict(ratio <= TARGET_RATIO)}). "
        f"All of a batch's events were chained {statistics.median(lags) * 1000:.0f} ms "
        f"(median; max {max(lags) * 1000:.0f} ms) after its last move returned.",
    ]
    if two is not None:
        none = statistics.median(two["none"])
        lines += [
            "",
            f"| {MOVES} writers, UPDATE + audit event per transaction | transactions/s "
            "| ÷ no chain |",
            "|---|---|---|",
        ]
        labels = {
            "none": "no chain",
            "chainer": "chained after commit (the design chosen)",
            "serialised": "advisory lock at the end of each transaction (the alternative)",
        }
        for design, label in labels.items():
            rate = statistics.median(two[design])
            lines.append(f"| {label} | {rate:.0f} | {rate / none:.2f} |")
    if three is not None:
        lines += [
            "",
            f"A backlog of {three['chained']:,.0f} unchained events was chained at "
            f"{three['chain_per_s']:,.0f} events/s; `VerifyAuditLog`'s walk took "
            f"{three['verify_us']:.0f} µs per event ({three['verified']:,.0f} events).",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=5, help="batches per round and server")
    parser.add_argument("--no-fsync", dest="fsync", action="store_false")
    parser.add_argument("--sql-seconds", type=float, default=4.0, help="per design and round")
    parser.add_argument("--skip-sql", action="store_true", help="skip parts 2 and 3")
    args = parser.parse_args()
    unwind_on_sigterm()
    with contextlib.ExitStack() as stack:
        work = scratch_dir(stack, "bench-audit-")
        postgres = EmbeddedPostgres(work / "postgres", durable=args.fsync)
        stack.callback(postgres.stop)
        postgres.start()
        urls = {}
        for name in (*MODES, "sql", "backlog"):
            asyncio.run(ensure_database(postgres.dsn(), f"bench_{name}"))
            urls[name] = postgres.dsn(f"bench_{name}")
        servers = {}
        for mode in MODES:
            server = ServerProcess(
                work / mode, urls[mode], args=[f"--audit-chain-interval={1 if mode == 'on' else 0}"]
            )
            stack.enter_context(server)
            servers[mode] = server
            log(f"server with the chain {mode}: setting up {MOVES} models")
            setup_models(server.target, MOVES)
        one = asyncio.run(part_one(servers, urls, args.rounds, args.batches))
        for server in servers.values():
            server.stop()
        two = three = None
        if not args.skip_sql:
            two = asyncio.run(part_two(urls["sql"], args.sql_seconds, args.rounds))
            three = asyncio.run(part_three(urls["backlog"], 20_000))
        print(report(args, one, two, three))
    return 0


if __name__ == "__main__":
    sys.exit(main())
