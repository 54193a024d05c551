"""Unit tests of the page-token codec."""

from __future__ import annotations

import base64

import pytest

from modelregistry_server.common.kernel.page_token import InvalidPageToken, PageTokenCodec


def test_round_trip_returns_the_key() -> None:
    codec = PageTokenCodec(b"s" * 32)
    token = codec.encode("q1", ["2026-01-01T00:00:00+00:00", "model-a"])
    assert codec.decode("q1", token) == ["2026-01-01T00:00:00+00:00", "model-a"]


def test_token_is_not_readable() -> None:
    token = PageTokenCodec(b"s" * 32).encode("q1", ["model-a"])
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert b"model-a" not in raw


@pytest.mark.parametrize("position", [0, 5, 20, -1])
def test_any_flipped_byte_is_rejected(position: int) -> None:
    codec = PageTokenCodec(b"s" * 32)
    raw = bytearray(base64.urlsafe_b64decode(codec.encode("q", ["m"]) + "=="))
    raw[position] ^= 0x01
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(InvalidPageToken):
        codec.decode("q", tampered)


def test_token_of_another_secret_is_rejected() -> None:
    token = PageTokenCodec(b"a" * 32).encode("q", ["m"])
    with pytest.raises(InvalidPageToken):
        PageTokenCodec(b"b" * 32).decode("q", token)


def test_token_of_another_query_is_rejected() -> None:
    codec = PageTokenCodec(b"s" * 32)
    with pytest.raises(InvalidPageToken, match="different query"):
        codec.decode("other", codec.encode("q", ["m"]))


@pytest.mark.parametrize("garbage", ["", "x", "!!!", "a" * 400])
def test_garbage_is_rejected(garbage: str) -> None:
    with pytest.raises(InvalidPageToken):
        PageTokenCodec(b"s" * 32).decode("q", garbage)
