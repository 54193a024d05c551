"""Reading the web UI's HTML in end-to-end tests (stdlib ``html.parser``), and browser-like
sessions: signed in with the session cookie, as a page of the UI would be.

The in-process registry serves on the test's event loop, so the client is aiohttp (async).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html.parser import HTMLParser

import aiohttp

_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


class _Table(HTMLParser):
    """Collects the header and body cells (as text) of the first ``<table>`` with ``cls``."""

    def __init__(self, cls: str) -> None:
        super().__init__()
        self.cls = cls
        self.depth = 0  # > 0 inside the table
        self.headers: list[str] = []
        self.header_attrs: list[dict[str, str]] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self._in_head = False
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "table" and not self.done:
            if self.depth or self.cls in values.get("class", "").split():
                self.depth += 1
            return
        if not self.depth:
            return
        if tag == "thead":
            self._in_head = True
        elif tag == "tr" and not self._in_head:
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
            if self._in_head:
                self.header_attrs.append(values)

    def handle_endtag(self, tag: str) -> None:
        if not self.depth:
            return
        if tag == "table":
            self.depth -= 1
            self.done = self.depth == 0
        elif tag == "thead":
            self._in_head = False
        elif tag in ("td", "th") and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            (self.headers if self._in_head else self.rows[-1]).append(text)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table(html: str, cls: str) -> tuple[list[str], list[dict[str, str]], list[list[str]]]:
    """Header texts, header attributes and body rows (cell texts) of the table of class
    ``cls``."""
    parser = _Table(cls)
    parser.feed(html)
    return parser.headers, parser.header_attrs, parser.rows


def csrf_token(html: str) -> str:
    """The CSRF token a page puts in its forms."""
    match = _CSRF.search(html)
    assert match is not None, "the page has no CSRF token"
    return match.group(1)


@asynccontextmanager
async def signed_in(base: str, token: str) -> AsyncIterator[aiohttp.ClientSession]:
    """A session that signed in with ``token`` through the sign-in form (cookie session)."""
    # unsafe=True: the jar keeps cookies of an IP address host (127.0.0.1).
    async with aiohttp.ClientSession(
        base, cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=30)
    ) as session:
        async with session.post(
            "/signin",
            data={"token": token, "next": "/"},
            headers={"Origin": base},
            allow_redirects=False,
        ) as response:
            assert response.status == 303, await response.text()
        yield session


def bearer_session(base: str, token: str) -> aiohttp.ClientSession:
    """A session that presents ``token`` as a bearer token on every request."""
    return aiohttp.ClientSession(
        base,
        headers={"Authorization": f"Bearer {token}"},
        timeout=aiohttp.ClientTimeout(total=30),
    )
