"""The tamper-evident audit log against a real PostgreSQL: events chained after commit, and
``modelregistry audit verify`` (a real CLI subprocess) naming the first event someone edited,
deleted or swapped directly in the database; an untouched log of 10,000 events verifies, and
its export checks out offline; concurrent audited writes chain into one log."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from modelregistry import AsyncClient
from modelregistry.artifact.v1 import artifact_service_pb2 as apb
from modelregistry.audit import export_record, verify_export
from modelregistry.metadata.v1 import audit_chain_pb2
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry_server.common.adapters import audit_log
from modelregistry_server.common.kernel.audit import AuditEntry
from modelregistry_server.common.kernel.audit_chain import EventFields, link_hash
from tests.conftest import RunningRegistry
from tests.support.artifacts import sha256_hex, upload
from tests.support.auth import ADMIN_TOKEN
from tests.support.metadata import new_model, push
from tests.support.registry_process import clean_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


async def append_events(database_url: str, count: int, batch: int = 1000) -> None:
    """``count`` audit events through ``audit_log.append``, ``batch`` per transaction."""
    conn = await asyncpg.connect(database_url)
    try:
        for start in range(0, count, batch):
            async with conn.transaction():
                for n in range(start, min(start + batch, count)):
                    entry = AuditEntry(
                        "tester", "SetAlias", f"models/m{n % 7}/aliases/a", f"m{n % 7}",
                        {"version": f"models/m/versions/{n}"}, {"n": n, "ratio": n / 7},
                        None,
                    )  # fmt: skip
                    await audit_log.append(conn, entry)
    finally:
        await conn.close()


async def audit_cli(registry: RunningRegistry, *args: str) -> subprocess.CompletedProcess[str]:
    """``modelregistry audit ARGS`` as an admin, in a subprocess (off the server's loop)."""
    env = clean_env() | {"MODELREGISTRY_TOKEN": ADMIN_TOKEN, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "modelregistry.cli", "--url", registry.target, "audit", *args]
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, env=env, timeout=120
    )


async def verified_head(registry: RunningRegistry) -> tuple[int, str]:
    """``audit verify`` passes; the head it prints (position, hash)."""
    result = await audit_cli(registry, "verify", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["intact"] is True
    return int(report["head_chain_position"]), report["head_hash"]


async def test_an_untouched_log_of_10000_events_verifies_and_exports(
    registry: RunningRegistry, database_url: str, tmp_path: Path
) -> None:
    await append_events(database_url, 10_000)
    started = time.monotonic()
    result = await audit_cli(registry, "verify")
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "audit log intact" in result.stdout
    position, head_hash = await verified_head(registry)
    assert position >= 10_000
    assert f"head hash: {head_hash}" in result.stdout
    print(f"audit verify of {position} events (chaining included): {took:.2f} s")
    assert took < 30

    started = time.monotonic()
    export = tmp_path / "audit.jsonl"
    result = await audit_cli(registry, "export", "--output", str(export))
    assert result.returncode == 0, result.stderr
    with export.open() as lines:
        check = verify_export(lines, anchor=(position, head_hash))
    print(f"export and offline check: {time.monotonic() - started:.2f} s")
    assert check.ok, check.problem
    assert (check.first_position, check.last_position) == (1, position)
    assert check.head_hash == head_hash


async def _edit(conn: asyncpg.Connection) -> tuple[int, int]:
    """An event's snapshot is changed; returns (its position, its id)."""
    event_id = await conn.fetchval(
        "UPDATE audit.events SET after = jsonb_set(after, '{n}', '999') WHERE seq = 12 RETURNING id"
    )
    return 12, event_id


async def _delete(conn: asyncpg.Connection) -> tuple[int, int]:
    """An event is deleted; returns (its position, the id of the event after the gap)."""
    await conn.execute("DELETE FROM audit.events WHERE seq = 12")
    return 12, await conn.fetchval("SELECT id FROM audit.events WHERE seq = 13")


async def _swap(conn: asyncpg.Connection) -> tuple[int, int]:
    """Two events swap places; returns (the first place, the id of the event now there)."""
    first, second = 5, 9
    moved = await conn.fetchval("SELECT id FROM audit.events WHERE seq = $1", second)
    async with conn.transaction():
        await conn.execute("UPDATE audit.events SET seq = -1 WHERE seq = $1", first)
        await conn.execute("UPDATE audit.events SET seq = $1 WHERE seq = $2", first, second)
        await conn.execute("UPDATE audit.events SET seq = $1 WHERE seq = -1", second)
    return first, moved


@pytest.mark.parametrize(
    ("tamper", "kind"), [(_edit, "edited"), (_delete, "missing"), (_swap, "reordered")]
)
async def test_verify_names_the_first_event_tampered_with_in_the_database(
    registry: RunningRegistry, database_url: str, tamper: object, kind: str
) -> None:
    await append_events(database_url, 30)
    await verified_head(registry)  # chained, and intact before the tampering
    conn = await asyncpg.connect(database_url)
    try:
        position, event_id = await tamper(conn)  # type: ignore[operator]
    finally:
        await conn.close()
    result = await audit_cli(registry, "verify")
    assert result.returncode == 6, (result.stdout, result.stderr)
    message = result.stderr
    assert f"({kind}) at position {position}: auditEvents/{event_id} (" in message, message
    assert result.stdout == ""


async def test_an_anchor_kept_outside_catches_a_rewritten_chain(
    registry: RunningRegistry, database_url: str
) -> None:
    await append_events(database_url, 20)
    anchor = await verified_head(registry)
    # Someone with the database edits event 3 and recomputes every hash after it.
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute("UPDATE audit.events SET actor = 'nobody' WHERE seq = 3")
            await _rehash_from(conn, 3)
    finally:
        await conn.close()
    assert (await audit_cli(registry, "verify")).returncode == 0  # consistent in itself
    result = await audit_cli(registry, "verify", "--anchor", f"{anchor[0]}:{anchor[1]}")
    assert result.returncode == 6
    assert f"(anchor_mismatch) at position {anchor[0]}" in result.stderr


async def _rehash_from(conn: asyncpg.Connection, position: int) -> None:
    rows = await conn.fetch("SELECT * FROM audit.events WHERE seq >= $1 ORDER BY seq", position)
    previous = bytes(rows[0]["prev_hash"])
    for row in rows:
        fields = EventFields(
            row["id"], row["event_time"], row["actor"], row["method"], row["resource"],
            row["model_id"], json.loads(row["before"]) if row["before"] else None,
            json.loads(row["after"]) if row["after"] else None, row["request_id"],
            row["trace_id"], row["denied_permission"],
        )  # fmt: skip
        digest = link_hash(previous, fields.canonical())
        await conn.execute(
            "UPDATE audit.events SET prev_hash = $2, hash = $3 WHERE id = $1",
            row["id"], previous, digest,
        )  # fmt: skip
        previous = digest
    await conn.execute("UPDATE audit.chain_head SET hash = $1", previous)


async def test_concurrent_audited_writes_chain_into_one_log_that_verifies(
    registry: RunningRegistry, database_url: str
) -> None:
    await new_model(registry, "m")
    versions = [await push(registry, "m", {"w": bytes([i]) * 64}) for i in range(2)]

    async def move(i: int) -> None:
        version = versions[i % 2].name
        await registry.metadata.SetAlias(
            ms.SetAliasRequest(model="models/m", alias=f"a{i % 10}", version=version)
        )

    await asyncio.gather(*(move(i) for i in range(200)))
    conn = await asyncpg.connect(database_url)
    try:
        # The background chainer catches up by itself within about a second.
        deadline = time.monotonic() + 5
        while await conn.fetchval("SELECT count(*) FROM audit.events WHERE seq IS NULL"):
            assert time.monotonic() < deadline, "events stayed unchained"
            await asyncio.sleep(0.05)
        row = await conn.fetchrow("SELECT count(*) AS total, max(seq) AS top FROM audit.events")
        assert row is not None
        total, top = row["total"], row["top"]
    finally:
        await conn.close()
    assert total == top  # positions 1..N, no gap, no repeat (seq is unique)
    report = await registry.metadata.VerifyAuditLog(audit_chain_pb2.VerifyAuditLogRequest())
    assert report.intact, report.problem.description
    assert report.event_count == total >= 200


async def test_deleting_a_blob_is_audited_with_its_digest(registry: RunningRegistry) -> None:
    data = b"an orphan blob"
    await upload(registry.artifacts, data)
    await registry.artifacts.DeleteBlob(apb.DeleteBlobRequest(name=f"blobs/{sha256_hex(data)}"))
    page = await registry.metadata.ExportAuditLog(audit_chain_pb2.ExportAuditLogRequest())
    gc = [e for e in page.audit_events if e.method == "RunGarbageCollection"]
    assert len(gc) == 1
    digests = [v.string_value for v in gc[0].after.fields["deleted_blobs"].list_value.values]
    assert digests == [sha256_hex(data)]
    assert gc[0].chain_position > 0
    assert len(gc[0].hash) == 64


async def test_the_async_sdk_verifies_and_exports(
    registry: RunningRegistry, database_url: str
) -> None:
    await append_events(database_url, 50)
    async with AsyncClient(registry.target, token=ADMIN_TOKEN) as client:
        report = await client.verify_audit_log()
        assert report.intact
        exported = [export_record(e) async for e in client.export_audit_log(page_size=7)]
        anchored = await client.verify_audit_log(
            anchor=(report.head_chain_position, report.head_hash)
        )
    assert anchored.intact
    check = verify_export(exported, anchor=(report.head_chain_position, report.head_hash))
    assert check.ok, check.problem
    assert check.count == report.event_count >= 50
