"""The one pagination path both services share (AIP-158).

A list port takes a keyset position (``Cursor``, the sort key of the last row seen, or None
for the first page) and a ``limit``, and returns up to ``limit`` rows plus the cursor of the
last row when more rows follow (None at the end). The use case opens a ``PageRequest`` from the
client's ``page_size`` and ``page_token`` with a ``Paginator``, passes ``request.after`` and
``request.limit`` to the port, and turns the port's cursor back into the next token with
``Paginator.next_token``. Tokens are opaque, encrypted and bound to the query
(``page_token.PageTokenCodec``), so a token cannot be altered or reused with another filter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from modelregistry_server.common.kernel.errors import InvalidArgument
from modelregistry_server.common.kernel.page_token import PageTokenCodec, query_fingerprint

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
PAGE_TOKEN_INVALID = "PAGE_TOKEN_INVALID"  # noqa: S105 - an error reason, not a secret

# A keyset position: JSON-able sort values of the last row returned (e.g. [name] or
# [create_time iso string, model id]). Each port documents its own shape and checks it.
Cursor = list[Any]

_T = TypeVar("_T")


def coerce_page_size(page_size: int) -> int:
    """Apply AIP-158: 0 means the default, above the maximum is coerced, negative is an error."""
    if page_size < 0:
        raise InvalidArgument("page_size", "must not be negative")
    return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def invalid_page_token(rule: str) -> InvalidArgument:
    """The error for a page token this server did not issue for this query (or a bad key)."""
    return InvalidArgument("page_token", rule, reason=PAGE_TOKEN_INVALID)


@dataclass(frozen=True)
class PageRequest:
    """A decoded List request: where to start, how many rows, and which query it is."""

    fingerprint: str
    limit: int
    after: Cursor | None


@dataclass(frozen=True)
class Page(Generic[_T]):
    """One page of rows and the token for the next one ("" at the end)."""

    items: list[_T]
    next_page_token: str


def string_position(after: Cursor | None) -> str:
    """The position of a listing keyed by one string (``[name]``); "" for the first page.

    Raises:
        InvalidArgument: ``PAGE_TOKEN_INVALID``: the cursor is of another shape.
    """
    if after is None:
        return ""
    if len(after) != 1 or not isinstance(after[0], str):
        raise invalid_page_token("page_token does not fit this listing")
    return after[0]


def split_page(
    rows: Sequence[_T], limit: int, cursor_of: Callable[[_T], Cursor]
) -> tuple[list[_T], Cursor | None]:
    """For a port that fetched ``limit + 1`` rows: the page, and the cursor if more follow."""
    if len(rows) <= limit:
        return list(rows), None
    page = list(rows[:limit])
    return page, cursor_of(page[-1])


class Paginator:
    """Turns page tokens into keyset positions and back, for every List use case."""

    def __init__(self, codec: PageTokenCodec) -> None:
        self._codec = codec

    def open(self, method: str, page_size: int, page_token: str, *query: str) -> PageRequest:
        """Decode a List request. ``query`` is everything but the page size that must stay
        the same between pages (parent, filter, order); a token from another query is
        ``INVALID_ARGUMENT`` (``PAGE_TOKEN_INVALID``).
        """
        limit = coerce_page_size(page_size)
        fingerprint = query_fingerprint(method, *query)
        after: Cursor | None = None
        if page_token:
            try:
                after = self._codec.decode(fingerprint, page_token)
            except ValueError as exc:
                raise invalid_page_token(str(exc)) from exc
        return PageRequest(fingerprint, limit, after)

    def page(self, request: PageRequest, rows: list[_T], cursor: Cursor | None) -> Page[_T]:
        """The page for ``rows`` and the token for the port's ``cursor`` (None: the end)."""
        token = "" if cursor is None else self._codec.encode(request.fingerprint, cursor)
        return Page(rows, token)
