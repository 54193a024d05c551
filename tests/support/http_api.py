"""What the JSON API's end-to-end tests share: the real ``curl`` binary run off the event loop,
aiohttp sessions with a bearer token, Server-Sent Events parsing and Status JSON reading.

The in-process registry serves on the test's event loop, so every HTTP client here is async
(aiohttp) or a subprocess (curl): a blocking call would stall the server it calls.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.conftest import RunningRegistry

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
# The headers every response of the HTTP face carries (face.py).
SECURITY_HEADERS = {
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
}


def base_url(registry: RunningRegistry) -> str:
    """``http://127.0.0.1:<port>`` of the registry's HTTP face."""
    assert registry.server.web is not None, "the registry was started without --http-listen"
    return f"http://127.0.0.1:{registry.server.web.port}"


@dataclass(frozen=True)
class HttpReply:
    """A response as curl saw it: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


async def curl(*args: str, timeout_s: float = 30.0) -> HttpReply:
    """Run ``curl -sS -i ARGS`` and parse what it printed (the last response's headers)."""
    process = await asyncio.create_subprocess_exec(
        "curl",
        "-sS",
        "-i",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    assert process.returncode == 0, f"curl {' '.join(args)} failed: {err.decode()}"
    head, _, body = out.partition(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 100"):  # "100 Continue" precedes the real response
        head, _, body = body.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return HttpReply(int(status_line.split()[1]), headers, body)


def error_info(document: dict[str, Any]) -> dict[str, Any]:
    """The ``ErrorInfo`` detail of a ``google.rpc.Status`` JSON document."""
    infos = [d for d in document.get("details", []) if d.get("@type") == ERROR_INFO]
    assert len(infos) == 1, document
    info: dict[str, Any] = infos[0]
    return info


@asynccontextmanager
async def session(
    registry: RunningRegistry, token: str | None, **headers: str
) -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp session on the registry's HTTP face presenting ``token`` (None: no token)."""
    sent = dict(headers)
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(base_url(registry), headers=sent, timeout=timeout) as client:
        yield client


@dataclass
class SseEvent:
    """One Server-Sent Event: its ``id:``, ``event:`` and ``data:`` lines."""

    id: str = ""
    event: str = ""
    data: list[str] = field(default_factory=list)

    def json(self) -> Any:
        """The data lines as one JSON document."""
        return json.loads("\n".join(self.data))


async def preamble(response: aiohttp.ClientResponse, within_s: float = 20.0) -> list[str]:
    """The lines of an event stream's first block (``: connected`` and its start ``id:``)."""

    async def read() -> list[str]:
        lines = []
        while line := (await response.content.readline()).decode().rstrip("\n"):
            lines.append(line)
        return lines

    return await asyncio.wait_for(read(), within_s)


async def next_events(
    response: aiohttp.ClientResponse, count: int, within_s: float = 20.0
) -> list[SseEvent]:
    """Read the next ``count`` events of an event stream (comments and heartbeats skipped)."""

    async def read() -> list[SseEvent]:
        events: list[SseEvent] = []
        current = SseEvent()
        while len(events) < count:
            raw = await response.content.readline()
            assert raw, f"the event stream ended after {len(events)} events"
            line = raw.decode().rstrip("\n")
            if not line:
                if current.data:
                    events.append(current)
                current = SseEvent()
            elif line.startswith(":"):
                continue
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "data":
                    current.data.append(value)
                elif name in ("id", "event"):
                    setattr(current, name, value)
        return events

    return await asyncio.wait_for(read(), within_s)
