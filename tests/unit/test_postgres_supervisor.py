"""The embedded PostgreSQL's supervisor: restarts a dead postmaster, gives up loudly."""

from __future__ import annotations

import asyncio

import pytest

from modelregistry_server.common.adapters.embedded_postgres import EmbeddedPostgresError
from modelregistry_server.common.adapters.postgres_supervisor import PostgresSupervisor

pytestmark = pytest.mark.timeout(10)


class _FakePostgres:
    """Exits when told; each restart fails ``failures_left`` times before one succeeds."""

    def __init__(self, failures: int = 0) -> None:
        self.code: int | None = None
        self.failures_left = failures
        self.spawns = 0

    def exit_code(self) -> int | None:
        return self.code

    def spawn(self) -> None:
        self.spawns += 1

    def wait_ready(self, timeout: float = 60.0) -> None:
        if self.failures_left > 0:
            self.failures_left -= 1
            raise EmbeddedPostgresError("shared memory block still in use")
        self.code = None

    def log_tail(self, lines: int = 20) -> str:
        return "LOG: terminated by signal 9"


async def _until(condition: object, within_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.01)


async def test_a_postmaster_that_died_is_restarted_after_failed_attempts() -> None:
    postgres = _FakePostgres(failures=2)
    reasons: list[str] = []
    supervisor = PostgresSupervisor(
        postgres, reasons.append, check_interval_s=0.01, backoff_s=[0.01] * 4
    )
    supervisor.start()
    postgres.code = -9
    await _until(lambda: supervisor.restarts == 1)
    assert postgres.spawns == 3  # two failed attempts, then the one that worked
    assert postgres.exit_code() is None
    assert reasons == []
    postgres.code = -9  # and again: supervision goes on after a restart
    await _until(lambda: supervisor.restarts == 2)
    await supervisor.stop()


async def test_it_gives_up_after_the_last_attempt_and_says_why() -> None:
    postgres = _FakePostgres(failures=100)
    reasons: list[str] = []
    supervisor = PostgresSupervisor(
        postgres, reasons.append, check_interval_s=0.01, backoff_s=[0.01] * 3
    )
    supervisor.start()
    postgres.code = 1
    await _until(lambda: reasons)
    assert postgres.spawns == 3
    assert "could not be restarted after 3 attempts" in reasons[0]
    assert "terminated by signal 9" in reasons[0]
    await supervisor.stop()


async def test_a_stopped_supervisor_restarts_nothing() -> None:
    postgres = _FakePostgres()
    supervisor = PostgresSupervisor(postgres, lambda _: None, check_interval_s=0.01)
    supervisor.start()
    await supervisor.stop()
    postgres.code = 0  # the server stopping its own database
    await asyncio.sleep(0.05)
    assert postgres.spawns == 0
