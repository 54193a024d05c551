"""Refused calls are all counted, and recorded in the audit log at a bounded rate."""

from __future__ import annotations

import asyncio

import pytest

from modelregistry_server.access.app.denied_calls import PER_KEY_INTERVAL_S, PER_WINDOW, DeniedCalls
from modelregistry_server.common.kernel.audit import AuditEntry
from modelregistry_server.common.kernel.errors import PermissionDenied
from modelregistry_server.common.kernel.identity import Principal

pytestmark = pytest.mark.timeout(10)
MALLORY = Principal("mallory", "token")
DELETE = "/modelregistry.metadata.v1.MetadataService/DeleteModel"


class Log:
    def __init__(self, fail: bool = False) -> None:
        self.entries: list[AuditEntry] = []
        self.fail = fail

    async def record(self, entry: AuditEntry) -> None:
        if self.fail:
            raise ConnectionError("database down")
        self.entries.append(entry)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_refusal_is_recorded_with_the_missing_permission_and_the_model() -> None:
    log = Log()
    denied = DeniedCalls(log)
    denied.note(MALLORY, DELETE, PermissionDenied("models.delete", "models/fraud"))
    await denied.flush()
    assert log.entries == [
        AuditEntry(
            actor="mallory",
            method="DeleteModel",
            resource="models/fraud",
            model_id="fraud",
            before=None,
            after=None,
            request_id=None,
            denied_permission="models.delete",
        )
    ]


async def test_a_registry_wide_refusal_names_no_model() -> None:
    log = Log()
    denied = DeniedCalls(log)
    denied.note(
        MALLORY,
        "/x.AccessService/ListAccessTokens",
        PermissionDenied("registry.admin", "the registry"),
    )
    await denied.flush()
    assert [(e.method, e.resource, e.model_id) for e in log.entries] == [
        ("ListAccessTokens", "the registry", None)
    ]


async def test_the_same_refusal_is_recorded_once_a_minute_but_counted_every_time() -> None:
    log, clock = Log(), Clock()
    denied = DeniedCalls(log, monotonic=clock)
    error = PermissionDenied("models.delete", "models/fraud")
    for _ in range(50):
        denied.note(MALLORY, DELETE, error)
    denied.note(MALLORY, DELETE, PermissionDenied("models.delete", "models/other"))
    clock.now += PER_KEY_INTERVAL_S
    denied.note(MALLORY, DELETE, error)
    await denied.flush()
    assert denied.count == 52
    assert [e.resource for e in log.entries] == ["models/fraud", "models/other", "models/fraud"]


async def test_a_flood_of_different_refusals_is_capped_per_window() -> None:
    log, clock = Log(), Clock()
    denied = DeniedCalls(log, monotonic=clock)
    for i in range(PER_WINDOW * 3):
        denied.note(MALLORY, DELETE, PermissionDenied("models.delete", f"models/m{i}"))
    await denied.flush()
    assert len(log.entries) == PER_WINDOW
    assert denied.count == PER_WINDOW * 3
    clock.now += PER_KEY_INTERVAL_S  # a new window
    denied.note(MALLORY, DELETE, PermissionDenied("models.delete", "models/late"))
    await denied.flush()
    assert log.entries[-1].resource == "models/late"


async def test_a_log_that_fails_costs_the_record_only(caplog: pytest.LogCaptureFixture) -> None:
    denied = DeniedCalls(Log(fail=True))
    denied.note(MALLORY, DELETE, PermissionDenied("models.delete", "models/fraud"))
    await denied.flush()
    assert denied.count == 1
    assert "could not record a refused DeleteModel call" in caplog.text


async def test_without_a_log_refusals_are_only_counted() -> None:
    denied = DeniedCalls(None)
    denied.note(MALLORY, DELETE, PermissionDenied("models.delete", "models/fraud"))
    await asyncio.sleep(0)
    assert (denied.count, denied.recorded) == (1, 0)
