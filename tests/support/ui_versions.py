"""A model with three differing versions for the e2e tests of the version, compare and audit
pages, and the HTTP helpers those tests share (aiohttp sessions from ``ui_html``)."""

from __future__ import annotations

import html
import re

import aiohttp

from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_version_pb2 as mv
from tests.conftest import RunningRegistry
from tests.support.auth import authenticated_channel
from tests.support.metadata import new_model, push

MODEL = "fraud"
CARD = """# Fraud model

Scores **payments**. [Docs](https://docs.example/fraud) [bad](javascript:alert(1))

| split | rows |
|---|---|
| train | 1200 |

<script>alert("card")</script>
<img src=x onerror=alert(2)>
"""
WEIGHTS = b"\x00weights\xff" * 300


def base_url(registry: RunningRegistry) -> str:
    """The registry's web address."""
    assert registry.server.web is not None
    return f"http://127.0.0.1:{registry.server.web.port}"


def version_page(number: int) -> str:
    """The address of a version page of ``MODEL``."""
    return f"/models/{MODEL}/versions/{number}"


async def get(session: aiohttp.ClientSession, path: str, status: int = 200) -> str:
    """GET ``path`` (no redirects followed), expecting ``status``; the body."""
    async with session.get(path, allow_redirects=False) as response:
        text = await response.text()
        assert response.status == status, text[:3000]
        return text


async def post(
    session: aiohttp.ClientSession, path: str, data: dict[str, str], status: int = 303
) -> tuple[str, str]:
    """Post a form as the page would (same origin); the answer's body and Location."""
    async with session.post(path, data=data, allow_redirects=False) as response:
        text = await response.text()
        assert response.status == status, text[:3000]
        return text, response.headers.get("Location", "")


def alerts(page: str) -> list[str]:
    """The texts of the page's alerts."""
    return [
        html.unescape(re.sub(r"<[^>]+>", "", found))
        for found in re.findall(r'<p class="alert" role="alert"[^>]*>(.*?)</p>', page, re.S)
    ]


async def seed(registry: RunningRegistry, pusher: str | None = None) -> None:
    """``fraud`` v1..v3 whose params, metrics, files and lineage differ; ``staging`` → v2.

    With ``pusher`` (a token), the versions are created by that principal, not by the admin.
    """
    await new_model(registry, MODEL)
    channel = authenticated_channel(registry.target, pusher) if pusher else registry.channel
    as_pusher = RunningRegistry(registry.server, registry.target, channel)
    lineage = mv.Lineage(
        source=mv.SourceCode(repo_url="https://git.example/fraud.git", commit="a" * 40),
        datasets=[mv.DatasetRef(uri="s3://data/train.parquet", digest="sha256:" + "d" * 64)],
        training_run_url="javascript:alert(3)",
        training_run_id="run-17",
    )
    files = [
        {"model.bin": WEIGHTS, "conf/config.json": b'{"a": 1}', "old.txt": b"old"},
        {"model.bin": WEIGHTS + b"more", "conf/config.json": b'{"a": 1}', "new.txt": b"new"},
        {"model.bin": WEIGHTS, "conf/config.json": b'{"a": 2}'},
    ]
    for index, version_files in enumerate(files):
        await push(
            as_pusher,
            MODEL,
            version_files,
            params={
                "lr": mv.ParamValue(double_value=0.1 if index == 0 else 0.05),
                "optimizer": mv.ParamValue(string_value="adam"),
            },
            metrics={"accuracy": 0.9 + index / 100, "loss": 0.3},
            description=CARD,
            lineage=lineage if index < 2 else mv.Lineage(),
        )
    if pusher:
        await channel.close(None)
    await registry.metadata.SetAlias(
        ms.SetAliasRequest(
            model=f"models/{MODEL}", alias="staging", version=f"models/{MODEL}/versions/2"
        )
    )
