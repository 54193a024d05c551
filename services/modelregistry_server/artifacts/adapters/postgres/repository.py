"""PostgreSQL implementations of the artifact ports: upload sessions and the blob index."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import asyncpg

from modelregistry_server.artifacts.domain.blob import BlobInfo, UploadedPart
from modelregistry_server.artifacts.domain.errors import (
    FailedPrecondition,
    UploadSessionNotFound,
)
from modelregistry_server.artifacts.domain.upload import (
    SESSION_NAME_PREFIX,
    UploadQuota,
    UploadSession,
)
from modelregistry_server.common.adapters.db import Database, shared_secret
from modelregistry_server.common.adapters.sql import load_queries
from modelregistry_server.common.kernel.paging import Cursor, split_page, string_position

QUERIES = load_queries(Path(__file__).parent / "queries.sql")


def _to_session(row: asyncpg.Record) -> UploadSession:
    parts = tuple(
        UploadedPart(p["part_number"], p["offset"], p["size"], p["etag"])
        for p in json.loads(row["parts"])
    )
    return UploadSession(
        session_id=row["session_id"],
        sha256=row["sha256"],
        size=row["size_bytes"],
        part_size=row["part_size"],
        committed_size=row["committed_size"],
        complete=row["complete"],
        create_time=row["create_time"],
        expire_time=row["expire_time"],
        upload_id=row["upload_id"],
        hash_state=row["hash_state"],
        parts=parts,
        owner=row["owner"],
    )


def _to_blob(row: asyncpg.Record) -> BlobInfo:
    return BlobInfo(row["sha256"], row["size_bytes"], row["create_time"])


def _parts_json(parts: Sequence[UploadedPart]) -> str:
    return json.dumps(
        [
            {"part_number": p.part_number, "offset": p.offset, "size": p.size, "etag": p.etag}
            for p in parts
        ]
    )


class PostgresUploadSessionRepository:
    """``UploadSessionRepository`` on ``artifacts.upload_sessions``."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def unfinished(self) -> tuple[int, int]:
        """Unfinished, unexpired sessions of every owner, and the bytes they have yet to
        receive (for the metrics; not a port method: no use case needs it)."""
        async with self._db.connection() as conn:
            row = await conn.fetchrow(QUERIES["unfinished_sessions"])
        assert row is not None  # an aggregate always returns a row
        return int(row["sessions"]), int(row["unwritten"])

    async def create(
        self, session: UploadSession, request_id: str | None, quota: UploadQuota | None = None
    ) -> UploadSession:
        """See the port."""
        async with self._db.transaction() as conn:
            if quota is not None:
                # One creation per owner at a time, so the count below cannot go stale.
                await conn.execute(QUERIES["lock_owner_sessions"], session.owner)
                earlier = (
                    await conn.fetchrow(QUERIES["get_session_by_request"], request_id)
                    if request_id is not None
                    else None
                )
                if earlier is not None:  # a retried create: no new session, no quota
                    return _to_session(earlier)
                usage = await conn.fetchrow(QUERIES["owner_session_usage"], session.owner)
                assert usage is not None  # an aggregate always returns a row
                quota.check(session.owner, usage["sessions"], usage["unwritten"], session.size)
            row = await conn.fetchrow(
                QUERIES["insert_session"],
                session.session_id,
                session.sha256,
                session.size,
                session.part_size,
                session.committed_size,
                session.complete,
                session.expire_time,
                request_id,
                session.owner,
            )
            if row is None:
                row = await conn.fetchrow(QUERIES["get_session_by_request"], request_id)
        if row is None:
            raise UploadSessionNotFound(f"the session of request_id {request_id}")
        return _to_session(row)

    async def get(self, session_id: str) -> UploadSession:
        """See the port."""
        async with self._db.connection() as conn:
            row = await conn.fetchrow(QUERIES["get_session"], session_id)
        if row is None:
            raise UploadSessionNotFound(SESSION_NAME_PREFIX + session_id)
        return _to_session(row)

    async def claim_writer(self, session_id: str) -> tuple[UploadSession, str]:
        """See the port."""
        token = secrets.token_hex(8)
        async with self._db.connection() as conn:
            row = await conn.fetchrow(QUERIES["claim_writer"], session_id, token)
        if row is None:
            raise UploadSessionNotFound(SESSION_NAME_PREFIX + session_id)
        return _to_session(row), token

    async def set_upload_id(self, session_id: str, writer: str, upload_id: str) -> None:
        """See the port."""
        async with self._db.connection() as conn:
            done = await conn.fetchval(QUERIES["set_upload_id"], session_id, writer, upload_id)
        if done is None:
            raise _taken_over(session_id)

    async def record_progress(
        self,
        session_id: str,
        writer: str,
        committed_size: int,
        hash_state: bytes,
        parts: Sequence[UploadedPart],
    ) -> None:
        """See the port."""
        async with self._db.connection() as conn:
            done = await conn.fetchval(
                QUERIES["record_progress"],
                session_id,
                writer,
                committed_size,
                hash_state,
                _parts_json(parts),
            )
        if done is None:
            raise _taken_over(session_id)

    async def mark_complete(self, session_id: str, writer: str) -> None:
        """See the port."""
        async with self._db.connection() as conn:
            done = await conn.fetchval(QUERIES["mark_complete"], session_id, writer)
        if done is None:
            raise _taken_over(session_id)

    async def delete(self, session_id: str) -> None:
        """See the port."""
        async with self._db.connection() as conn:
            await conn.execute(QUERIES["delete_session"], session_id)

    async def list_expired(self, now: datetime, limit: int) -> list[UploadSession]:
        """See the port."""
        async with self._db.connection() as conn:
            rows = await conn.fetch(QUERIES["list_expired_sessions"], now, limit)
        return [_to_session(row) for row in rows]

    async def known_upload_ids(self) -> set[str]:
        """See the port."""
        async with self._db.connection() as conn:
            rows = await conn.fetch(QUERIES["known_upload_ids"])
        return {row["upload_id"] for row in rows}


def _taken_over(session_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"{SESSION_NAME_PREFIX}{session_id} is being written by another stream (or was finished "
        "or swept); ask QueryWriteStatus and resume from its committed_size",
        reason="UPLOAD_SESSION_TAKEN_OVER",
    )


class PostgresBlobIndex:
    """``BlobIndex`` on ``artifacts.blobs``."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def add(self, sha256: str, size: int) -> BlobInfo:
        """See the port."""
        async with self._db.connection() as conn:
            row = await conn.fetchrow(QUERIES["add_blob"], sha256, size)
            if row is None:
                # Another upload of the same content inserted the row and committed while our
                # INSERT waited for it: ON CONFLICT then does nothing, and the statement's
                # snapshot, taken before that commit, cannot see the row. A new statement can
                # (seen in the scale-out test: two pushers finishing the same file at once).
                row = await conn.fetchrow(QUERIES["add_blob"], sha256, size)
        if row is None:
            raise RuntimeError(f"the blob row of {sha256} could be neither inserted nor read")
        return _to_blob(row)

    async def get(self, sha256: str) -> BlobInfo | None:
        """See the port."""
        async with self._db.connection() as conn:
            row = await conn.fetchrow(QUERIES["get_blob"], sha256)
        return None if row is None else _to_blob(row)

    async def find_present(self, sha256s: Sequence[str]) -> dict[str, int]:
        """See the port."""
        async with self._db.connection() as conn:
            rows = await conn.fetch(QUERIES["find_blobs"], list(sha256s))
        return {row["sha256"]: row["size_bytes"] for row in rows}

    async def list(
        self, after: Cursor | None, limit: int, created_before: datetime | None
    ) -> tuple[list[BlobInfo], Cursor | None]:
        """See the port."""
        start = string_position(after)
        async with self._db.connection() as conn:
            rows = await conn.fetch(QUERIES["list_blobs"], start, limit + 1, created_before)
        return split_page([_to_blob(row) for row in rows], limit, lambda b: [b.sha256])

    async def remove(self, sha256: str) -> None:
        """See the port."""
        async with self._db.connection() as conn:
            await conn.execute(QUERIES["remove_blob"], sha256)


async def page_token_secret(database: Database) -> bytes:
    """Return the artifact service's page-token secret, creating it on first use."""
    return await shared_secret(database, QUERIES, "page_token")
