"""Lazy iteration over AIP-158 list methods: follow ``next_page_token`` until it is empty.

Nothing is fetched until the first item is asked for, and each further page only when the
previous one is used up, so ``next(iter(client.list_models()))`` costs one call and breaking out
of a loop early costs no more pages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Generic, Protocol, TypeVar

from modelregistry.errors import InternalError

T = TypeVar("T")
P = TypeVar("P", bound="PageLike")


class PageLike(Protocol):
    """A list response: any message with a ``next_page_token``."""

    @property
    def next_page_token(self) -> str:
        """Empty if and only if there are no more results."""
        ...


def _check_progress(sent: str, received: str) -> None:
    # An empty page with a non-empty token is legal, so a server handing back the token it was
    # given would make the pager spin forever: fail loudly instead.
    if received and received == sent:
        raise InternalError(
            "the registry returned the same page token it was sent; stopping to avoid a loop",
            reason="PAGE_TOKEN_REPEATED",
        )


class Pager(Generic[P, T]):
    """Iterate the items of every page of a list call, fetching pages on demand.

    ``fetch(page_token)`` makes one call; ``items(response)`` picks the page's items out of it.
    """

    def __init__(self, fetch: Callable[[str], P], items: Callable[[P], Iterable[T]]) -> None:
        self._fetch = fetch
        self._items = items
        # A generator runs nothing until its first next(), so no page is fetched before then.
        self._iterator = self._all_items()

    def pages(self) -> Iterator[P]:
        """Each response in turn, for callers that want page boundaries or counts."""
        token = ""
        while True:
            page = self._fetch(token)
            yield page
            _check_progress(token, page.next_page_token)
            token = page.next_page_token
            if not token:
                return

    def _all_items(self) -> Iterator[T]:
        for page in self.pages():
            yield from self._items(page)

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        return next(self._iterator)


class AsyncPager(Generic[P, T]):
    """The ``async for`` twin of :class:`Pager`; ``fetch`` is a coroutine function."""

    def __init__(
        self, fetch: Callable[[str], Awaitable[P]], items: Callable[[P], Iterable[T]]
    ) -> None:
        self._fetch = fetch
        self._items = items
        self._iterator = self._all_items()  # lazy, like Pager's

    async def pages(self) -> AsyncIterator[P]:
        """Each response in turn."""
        token = ""
        while True:
            page = await self._fetch(token)
            yield page
            _check_progress(token, page.next_page_token)
            token = page.next_page_token
            if not token:
                return

    async def _all_items(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in self._items(page):
                yield item

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        return await anext(self._iterator)

    async def to_list(self) -> list[T]:
        """Every item of every page (convenience for small collections)."""
        return [item async for item in self]
