"""The SDK pager: lazy, follows next_page_token, stops only on an empty token."""

from __future__ import annotations

import pytest

from modelregistry._pager import AsyncPager, Pager
from modelregistry.errors import InternalError
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_pb2

pytestmark = pytest.mark.timeout(10)


class FakeListModels:
    """A stub method serving fixed pages keyed by page token, recording the tokens it got."""

    def __init__(self, pages: dict[str, tuple[list[str], str]]) -> None:
        self.pages = pages
        self.tokens: list[str] = []

    def __call__(self, token: str) -> ms.ListModelsResponse:
        self.tokens.append(token)
        names, next_token = self.pages[token]
        return ms.ListModelsResponse(
            models=[model_pb2.Model(name=f"models/{n}") for n in names],
            next_page_token=next_token,
        )

    async def call_async(self, token: str) -> ms.ListModelsResponse:
        return self(token)


# Page 2 is empty but has a token: only an empty token ends a list (AIP-158).
PAGES = {"": (["a", "b"], "t1"), "t1": ([], "t2"), "t2": (["c"], "")}


def test_follows_tokens_through_empty_pages_until_the_token_is_empty() -> None:
    fake = FakeListModels(PAGES)
    pager = Pager(fake, lambda page: page.models)
    assert [m.name for m in pager] == ["models/a", "models/b", "models/c"]
    assert fake.tokens == ["", "t1", "t2"]


def test_is_lazy() -> None:
    fake = FakeListModels(PAGES)
    pager = Pager(fake, lambda page: page.models)
    assert fake.tokens == []  # nothing fetched on construction
    assert next(pager).name == "models/a"
    assert next(pager).name == "models/b"
    assert fake.tokens == [""]  # the second page only when the first is used up
    assert next(pager).name == "models/c"
    assert fake.tokens == ["", "t1", "t2"]
    with pytest.raises(StopIteration):
        next(pager)
    assert iter(pager) is pager


def test_single_page_and_empty_list() -> None:
    assert list(Pager(FakeListModels({"": ([], "")}), lambda p: p.models)) == []
    fake = FakeListModels({"": (["x"], "")})
    assert [m.name for m in Pager(fake, lambda p: p.models)] == ["models/x"]
    assert fake.tokens == [""]


def test_pages_exposes_page_boundaries() -> None:
    pages = list(Pager(FakeListModels(PAGES), lambda p: p.models).pages())
    assert [len(p.models) for p in pages] == [2, 0, 1]


def test_a_repeated_token_fails_instead_of_looping_forever() -> None:
    fake = FakeListModels({"": (["a"], "t"), "t": (["b"], "t")})
    with pytest.raises(InternalError):
        list(Pager(fake, lambda p: p.models))


async def test_async_pager_follows_tokens_lazily() -> None:
    fake = FakeListModels(PAGES)
    pager = AsyncPager(fake.call_async, lambda page: page.models)
    assert fake.tokens == []
    first = await anext(pager)
    assert first.name == "models/a"
    assert fake.tokens == [""]
    rest = [m.name async for m in pager]
    assert rest == ["models/b", "models/c"]
    assert fake.tokens == ["", "t1", "t2"]


async def test_async_pager_to_list_and_pages() -> None:
    fake = FakeListModels(PAGES)
    assert [m.name for m in await AsyncPager(fake.call_async, lambda p: p.models).to_list()] == [
        "models/a", "models/b", "models/c",
    ]  # fmt: skip
    pages = [p async for p in AsyncPager(fake.call_async, lambda p: p.models).pages()]
    assert len(pages) == 3
