"""examples/serving: the model server follows ``production`` to new weights within 5 s.

The example and its ``make_model.py`` run as subprocesses against the in-process registry, which
serves on the test's event loop: the test never blocks that loop (subprocesses are asyncio ones,
HTTP and SDK calls run in worker threads).
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pytest
from safetensors.numpy import load_file

from modelregistry import Client
from tests.conftest import RunningRegistry
from tests.support.auth import ADMIN_TOKEN
from tests.support.registry_process import clean_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
T = TypeVar("T")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "serving"
MODEL = "linear"
INPUTS = [0.5, -1.0, 2.0, 0.25]  # make_model.py's default input size is 4
RELOAD_BUDGET_S = 5.0
Array = npt.NDArray[np.float32]


async def off_loop(work: Callable[[], T]) -> T:
    """Run blocking work in a thread while the loop keeps serving the registry."""
    return await asyncio.to_thread(work)


def example_env(cache: Path, *, offline: bool = False) -> dict[str, str]:
    env = clean_env()
    env["MODELREGISTRY_CACHE"] = str(cache)
    env["MODELREGISTRY_TOKEN"] = ADMIN_TOKEN  # what a deployment puts in the serving pod's env
    if offline:
        env["MODELREGISTRY_OFFLINE"] = "1"
    return env


async def make_model(registry: RunningRegistry, cwd: Path, seed: int, alias: bool) -> int:
    """Run the example's make_model.py; returns the version it pushed."""
    args = ["--model", MODEL, "--registry", registry.target, "--seed", str(seed)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE / "make_model.py"),
        *args,
        *([] if alias else ["--no-alias"]),
        cwd=cwd,
        env=example_env(cwd / "push-cache"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return int(out.decode().strip())


def weights_of(client: Client, version: int, dest: Path) -> tuple[Array, Array]:
    """The weight and bias the registry holds for a version (pulled independently)."""
    folder = client.pull(f"{MODEL}:{version}", dest)
    tensors = load_file(folder / "model.safetensors")
    return tensors["weight"], tensors["bias"]


def http_json(url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    method = "GET" if body is None else "POST"
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http://127.0.0.1
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - http://127.0.0.1
        payload: dict[str, Any] = json.loads(response.read())
    return payload


class Example:
    """A running server.py: its base URL and the log lines it has written so far."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.url = ""
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip())

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def wait_for_log(self, pattern: str, within_s: float) -> re.Match[str]:
        """The first log line matching ``pattern``; fails if none comes within ``within_s``."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            for line in self.lines:
                if match := re.search(pattern, line):
                    return match
            if self.proc.returncode is not None:
                break
            await asyncio.sleep(0.02)
        pytest.fail(f"no log line matching {pattern!r}; the example wrote:\n{self.log}")

    async def predict(self) -> dict[str, Any]:
        return await off_loop(lambda: http_json(f"{self.url}/predict", {"inputs": INPUTS}))

    async def healthz(self) -> dict[str, Any]:
        return await off_loop(lambda: http_json(f"{self.url}/healthz"))

    async def stop(self) -> int:
        """SIGTERM, as an orchestrator would; returns the exit code."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.proc.wait(), 10)
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
            self._reader.cancel()
        return code


@asynccontextmanager
async def run_example(
    cwd: Path, registry_target: str, *, offline: bool = False
) -> AsyncIterator[Example]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE / "server.py"),
        *("--model", MODEL, "--registry", registry_target, "--port", "0"),
        # Only the watch may make the switch: no periodic re-check during the test.
        "--resync-interval=0",
        cwd=cwd,
        env=example_env(cwd / "serve-cache", offline=offline),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    example = Example(proc)
    try:
        match = await example.wait_for_log(r"serving on (http://127\.0\.0\.1:\d+)", 30)
        example.url = match.group(1)
        yield example
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def matches(answer: dict[str, Any], weight: Array, bias: Array) -> bool:
    expected = weight @ np.asarray(INPUTS, dtype=np.float32) + bias
    return bool(np.allclose(answer["outputs"], expected, rtol=1e-5, atol=1e-5))


async def until_watching(example: Example, client: Client) -> None:
    """Return once the example's watch is subscribed.

    A watch sees only moves made after it subscribed, and nothing tells when that happened:
    move another alias until the example logs the event.
    """

    def canary_until_seen() -> None:
        while not any("alias canary moved" in line for line in example.lines):
            client.set_alias(MODEL, "canary", 1)
            time.sleep(0.2)

    await asyncio.wait_for(off_loop(canary_until_seen), 30)


async def test_example_follows_production_within_5s(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    assert await make_model(registry, tmp_path, seed=1, alias=True) == 1  # production -> 1
    assert await make_model(registry, tmp_path, seed=2, alias=False) == 2
    client = Client(registry.target, cache_dir=tmp_path / "test-cache", offline=False)
    try:
        w_a, b_a = await off_loop(lambda: weights_of(client, 1, tmp_path / "v1"))
        w_b, b_b = await off_loop(lambda: weights_of(client, 2, tmp_path / "v2"))
        assert await off_loop(lambda: client.resolve(f"{MODEL}@production").version) == 1
        # The switch is only observable if the two versions answer differently.
        assert not np.allclose(w_a @ INPUTS + b_a, w_b @ INPUTS + b_b, atol=1e-3)

        async with run_example(tmp_path, registry.target) as example:
            assert (await example.healthz())["model_version"] == 1
            first = await example.predict()
            assert first["model_version"] == 1
            assert matches(first, w_a, b_a), first

            await until_watching(example, client)
            assert (await example.predict())["model_version"] == 1  # canary changed nothing

            moved_at = time.monotonic()
            await off_loop(lambda: client.set_alias(MODEL, "production", 2))
            answers: list[dict[str, Any]] = []
            latency: float | None = None
            while time.monotonic() - moved_at < 2 * RELOAD_BUDGET_S:
                answer = await example.predict()
                answers.append(answer)
                if matches(answer, w_b, b_b):
                    latency = time.monotonic() - moved_at
                    break
                await asyncio.sleep(0.02)
            print(f"\nserving example reload latency: {latency}s over {len(answers)} requests")
            assert latency is not None, f"never answered with version 2:\n{example.log}"
            assert latency < RELOAD_BUDGET_S
            # Until the switch every answer was version 1's, whole: never a mix of weights.
            assert all(a["model_version"] == 1 and matches(a, w_a, b_a) for a in answers[:-1])
            assert answers[-1]["model_version"] == 2
            assert (await example.healthz())["model_version"] == 2
            assert "now serving linear version 2 (was 1)" in example.log
            assert await example.stop() == 0, example.log

        # A restart with the registry unreachable serves the cached production version.
        async with run_example(tmp_path, "127.0.0.1:1", offline=True) as offline:
            assert (await offline.healthz())["model_version"] == 2
            answer = await offline.predict()
            assert matches(answer, w_b, b_b), answer
            assert "offline mode" in offline.log
            assert await offline.stop() == 0, offline.log
    finally:
        await off_loop(client.close)


async def test_example_keeps_serving_when_a_reload_fails(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    assert await make_model(registry, tmp_path, seed=1, alias=True) == 1
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    client = Client(registry.target, cache_dir=tmp_path / "test-cache", offline=False)
    try:
        w_a, b_a = await off_loop(lambda: weights_of(client, 1, tmp_path / "v1"))
        version = await off_loop(lambda: client.push(broken, model=MODEL, lineage=False))
        assert version.version == 2
        async with run_example(tmp_path, registry.target) as example:
            assert (await example.healthz())["model_version"] == 1
            await until_watching(example, client)
            await off_loop(lambda: client.set_alias(MODEL, "production", 2))
            await example.wait_for_log(r"alias production moved to version 2", 10)
            await example.wait_for_log(
                r"reload of linear@production failed; still serving version 1", 10
            )
            answer = await example.predict()
            assert answer["model_version"] == 1
            assert matches(answer, w_a, b_a), answer
            assert (await example.healthz())["model_version"] == 1
            assert await example.stop() == 0, example.log
    finally:
        await off_loop(client.close)
