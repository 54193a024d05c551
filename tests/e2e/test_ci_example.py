"""examples/ci/evaluate.py, run as a CI job would: it reports PASSED for a good model and
FAILED for a bad one, as a reporter principal."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelregistry import Client
from modelregistry.access.v1 import access_service_pb2_grpc
from tests.conftest import RunningRegistry
from tests.support.auth import ADMIN_TOKEN, create_token, grant
from tests.support.registry_process import clean_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "ci" / "evaluate.py"
GOOD = {"weights": [2.0, -1.0, 0.5], "bias": 0.1}  # the rule eval.csv was labelled with
BAD = {"weights": [-2.0, 1.0, -0.5], "bias": -0.1}  # its opposite


async def _run(target: str, token: str, home: Path, ref: str) -> subprocess.CompletedProcess[str]:
    env = {**clean_env(), "MODELREGISTRY_TOKEN": token, "MODELREGISTRY_CACHE": str(home)}
    command = [sys.executable, str(SCRIPT), ref, "--url", target]
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, env=env, timeout=120
    )


async def test_the_ci_script_reports_what_it_measured(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    ci = await create_token(registry.target, "ci-eval", role=None)
    await grant(
        access_service_pb2_grpc.AccessServiceStub(registry.channel), "ci-eval", "reporter", "*"
    )
    for n, model in ((1, GOOD), (2, BAD)):
        folder = tmp_path / f"v{n}"
        folder.mkdir()
        (folder / "model.json").write_text(json.dumps(model))

        def push(source: Path = folder) -> None:
            with Client(registry.target, token=ADMIN_TOKEN, cache_dir=tmp_path / "c") as client:
                client.push(source, model="fraud")

        await asyncio.to_thread(push)

    good = await _run(registry.target, ci, tmp_path / "ci", "fraud:1")
    assert good.returncode == 0, good.stderr
    assert "PASSED (1.000)" in good.stdout
    bad = await _run(registry.target, ci, tmp_path / "ci", "fraud:2")
    assert bad.returncode == 1, bad.stderr
    assert "FAILED" in bad.stdout

    def checks() -> list[tuple[int, str, str, float]]:
        with Client(registry.target, token=ADMIN_TOKEN, cache_dir=tmp_path / "c") as client:
            return [
                (n, c.reporter, c.check_name, c.metrics["accuracy"])
                for n in (1, 2)
                for c in client.list_checks("fraud", n)
            ]

    got = await asyncio.to_thread(checks)
    assert got == [(1, "ci-eval", "eval/accuracy", 1.0), (2, "ci-eval", "eval/accuracy", 0.0)]
