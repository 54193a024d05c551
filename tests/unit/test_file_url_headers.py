"""The header rules of file URLs (``web/http_headers.py``): ranges, entity-tag conditions,
``Content-Disposition`` and the media type that reaches ``Content-Type``."""

from __future__ import annotations

import pytest

from modelregistry_server.web.http_headers import (
    FALLBACK_MEDIA_TYPE,
    ByteRange,
    RangeNotSatisfiable,
    content_disposition,
    none_match,
    range_allowed,
    requested_range,
    safe_media_type,
)

SIZE = 1000
ETAG = "ab" * 32


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=100-", ByteRange(100, 999)),
        ("bytes=-10", ByteRange(990, 999)),
        ("bytes=-5000", ByteRange(0, 999)),  # a suffix longer than the file: all of it
        ("bytes=990-5000", ByteRange(990, 999)),  # an end past the file is cut
        ("bytes=999-999", ByteRange(999, 999)),
        ("Bytes = 5-6", ByteRange(5, 6)),
        ("bytes=5-6,", ByteRange(5, 6)),  # empty list elements are allowed
        ("bytes=0-" + "9" * 5000, ByteRange(0, 999)),  # never converted
    ],
)
def test_a_single_range_is_served(header: str, expected: ByteRange) -> None:
    assert requested_range(header, SIZE) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "items=0-5",
        "bytes=abc",
        "bytes=-",
        "bytes=9-3",  # last before first: not a valid range
        "bytes=0-1,5-6",  # several ranges: the whole file
        "bytes=٣-٤",  # only ASCII digits count
        "bytes=0x10-",
    ],
)
def test_no_range_or_one_that_is_ignored_means_the_whole_file(header: str | None) -> None:
    assert requested_range(header, SIZE) is None


@pytest.mark.parametrize(
    ("header", "size"),
    [("bytes=1000-", 1000), ("bytes=1000-2000", 1000), ("bytes=-0", 1000), ("bytes=-5", 0),
     ("bytes=0-", 0), ("bytes=" + "9" * 5000 + "-", 1000)],
)  # fmt: skip
def test_a_range_starting_past_the_end_is_not_satisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        requested_range(header, size)


def test_content_range_names_the_range_and_the_size() -> None:
    assert ByteRange(5, 9).content_range(SIZE) == "bytes 5-9/1000"
    assert ByteRange(5, 9).length == 5


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        (f'"{ETAG}"', True),
        (f'W/"{ETAG}"', True),  # weak comparison
        (f'"x", "{ETAG}"', True),
        ("*", True),
        ('"x"', False),
        (ETAG, False),  # not quoted: not an entity tag
    ],
)
def test_if_none_match_compares_weakly(header: str | None, matches: bool) -> None:
    assert none_match(header, ETAG) is matches


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        (None, True),
        (f'"{ETAG}"', True),
        (f'W/"{ETAG}"', False),  # If-Range compares strongly
        ('"other"', False),
        ("Wed, 21 Oct 2015 07:28:00 GMT", False),  # no Last-Modified to compare a date with
    ],
)
def test_if_range_lets_a_range_through_only_with_the_strong_etag(
    header: str | None, allowed: bool
) -> None:
    assert range_allowed(header, ETAG) is allowed


def test_content_disposition_has_an_ascii_name_and_the_exact_utf8_one() -> None:
    value = content_disposition('tokenizer/vocab "größe".txt')
    assert value == (
        'attachment; filename="vocab _gr__e_.txt"; '
        "filename*=UTF-8''vocab%20%22gr%C3%B6%C3%9Fe%22.txt"
    )
    assert content_disposition("model.bin") == (
        "attachment; filename=\"model.bin\"; filename*=UTF-8''model.bin"
    )


@pytest.mark.parametrize(
    ("media_type", "expected"),
    [
        ("application/vnd.safetensors", "application/vnd.safetensors"),
        ("text/plain; charset=utf-8", "text/plain; charset=utf-8"),
        ('text/plain; charset="utf-8"', 'text/plain; charset="utf-8"'),
        ("", FALLBACK_MEDIA_TYPE),
        ("text/html\r\nSet-Cookie: a=b", FALLBACK_MEDIA_TYPE),
        ("not a type", FALLBACK_MEDIA_TYPE),
        ("a/" + "b" * 300, FALLBACK_MEDIA_TYPE),
    ],
)
def test_only_a_well_formed_media_type_reaches_content_type(media_type: str, expected: str) -> None:
    assert safe_media_type(media_type) == expected
