"""Opaque, signed and encrypted page tokens for keyset pagination.

A token carries the sort key of the last row returned plus a fingerprint of the query it
belongs to. It is encrypted so that clients cannot read it and start depending on its shape,
and authenticated so that a tampered or foreign token is rejected instead of being turned into
SQL. Only the standard library is used: the keystream is HMAC-SHA256 in counter mode (a PRF
stream cipher) and the tag is HMAC-SHA256 over nonce and ciphertext (encrypt-then-MAC).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from typing import Any

_NONCE_BYTES = 12
_TAG_BYTES = 16
_VERSION = 1


class InvalidPageToken(ValueError):
    """The token was not issued by this registry for this query, or has been altered."""


def query_fingerprint(*parts: str) -> str:
    """Hash the parts of a List request that must not change between pages."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


class PageTokenCodec:
    """Encodes keyset positions into page tokens and back.

    Args:
        secret: At least 32 random bytes shared by every replica (kept in the database).
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("page token secret must be at least 32 bytes")
        self._enc_key = hmac.digest(secret, b"modelregistry page token enc", "sha256")
        self._mac_key = hmac.digest(secret, b"modelregistry page token mac", "sha256")

    def encode(self, fingerprint: str, key: list[Any]) -> str:
        """Return the token for resuming after ``key`` in the query ``fingerprint``."""
        plain = json.dumps({"v": _VERSION, "q": fingerprint, "k": key}, separators=(",", ":"))
        nonce = secrets.token_bytes(_NONCE_BYTES)
        cipher = _xor(plain.encode(), self._keystream(nonce, len(plain)))
        tag = hmac.digest(self._mac_key, nonce + cipher, "sha256")[:_TAG_BYTES]
        return base64.urlsafe_b64encode(nonce + cipher + tag).decode().rstrip("=")

    def decode(self, fingerprint: str, token: str) -> list[Any]:
        """Return the keyset position in ``token``.

        Raises:
            InvalidPageToken: The token is malformed, altered, or from a different query.
        """
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError) as exc:
            raise InvalidPageToken("page_token is not a token this server issued") from exc
        if len(raw) < _NONCE_BYTES + _TAG_BYTES + 1:
            raise InvalidPageToken("page_token is not a token this server issued")
        nonce, cipher, tag = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:-_TAG_BYTES], raw[-_TAG_BYTES:]
        expected = hmac.digest(self._mac_key, nonce + cipher, "sha256")[:_TAG_BYTES]
        if not hmac.compare_digest(tag, expected):
            raise InvalidPageToken("page_token is not a token this server issued")
        payload = json.loads(_xor(cipher, self._keystream(nonce, len(cipher))))
        if payload.get("v") != _VERSION or not isinstance(payload.get("k"), list):
            raise InvalidPageToken("page_token is from an incompatible server version")
        if payload.get("q") != fingerprint:
            raise InvalidPageToken(
                "page_token belongs to a different query: keep filter, order_by and parent "
                "the same while paging"
            )
        key: list[Any] = payload["k"]
        return key

    def _keystream(self, nonce: bytes, length: int) -> bytes:
        blocks = []
        for counter in range((length + 31) // 32):
            blocks.append(hmac.digest(self._enc_key, nonce + counter.to_bytes(4, "big"), "sha256"))
        return b"".join(blocks)[:length]


def _xor(data: bytes, stream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, stream, strict=True))
