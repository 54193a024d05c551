"""The one pagination path: page sizes, tokens bound to their query, keyset positions."""

from __future__ import annotations

import pytest

from modelregistry_server.common.kernel.errors import InvalidArgument
from modelregistry_server.common.kernel.page_token import PageTokenCodec
from modelregistry_server.common.kernel.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Paginator,
    split_page,
    string_position,
)

PAGINATOR = Paginator(PageTokenCodec(b"s" * 32))


def test_open_applies_the_page_size_rules() -> None:
    assert PAGINATOR.open("List", 0, "").limit == DEFAULT_PAGE_SIZE
    assert PAGINATOR.open("List", 10**6, "").limit == MAX_PAGE_SIZE
    assert PAGINATOR.open("List", 7, "").after is None
    with pytest.raises(InvalidArgument) as info:
        PAGINATOR.open("List", -1, "")
    assert info.value.field == "page_size"


def test_a_token_resumes_after_the_cursor_it_was_made_from() -> None:
    first = PAGINATOR.open("List", 2, "", "parent=a")
    page = PAGINATOR.page(first, ["x", "y"], ["y", 2])
    resumed = PAGINATOR.open("List", 2, page.next_page_token, "parent=a")
    assert resumed.after == ["y", 2]
    assert PAGINATOR.page(resumed, ["z"], None).next_page_token == ""


@pytest.mark.parametrize("other", [("List", "parent=b"), ("Other", "parent=a")])
def test_a_token_of_another_query_is_page_token_invalid(other: tuple[str, str]) -> None:
    token = PAGINATOR.page(PAGINATOR.open("List", 1, "", "parent=a"), [1], [1]).next_page_token
    with pytest.raises(InvalidArgument) as info:
        PAGINATOR.open(other[0], 1, token, other[1])
    assert info.value.reason == "PAGE_TOKEN_INVALID"


def test_a_forged_token_is_page_token_invalid() -> None:
    with pytest.raises(InvalidArgument) as info:
        PAGINATOR.open("List", 1, "bm90IGEgdG9rZW4")
    assert info.value.reason == "PAGE_TOKEN_INVALID"


def test_split_page_tells_whether_more_rows_follow() -> None:
    assert split_page([1, 2], 2, lambda n: [n]) == ([1, 2], None)
    assert split_page([1, 2, 3], 2, lambda n: [n]) == ([1, 2], [2])


def test_string_position() -> None:
    assert string_position(None) == ""
    assert string_position(["alias"]) == "alias"
    for bad in ([], [1], ["a", "b"]):
        with pytest.raises(InvalidArgument) as info:
            string_position(bad)
        assert info.value.reason == "PAGE_TOKEN_INVALID"
