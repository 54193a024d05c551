"""List paging rules both services share: AIP-158 page sizes and page-token cursors.

Each service reports a bad field with its own ``InvalidArgument`` (they carry different error
metadata, and the services never import each other), so the functions take that class as
``invalid`` and raise what it builds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from modelregistry_server.common.page_token import PageTokenCodec

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

_T = TypeVar("_T")


class InvalidField(Protocol):
    """A service's ``InvalidArgument`` class, called to build the error for a bad field."""

    def __call__(self, field: str, rule: str, *, reason: str = ...) -> Exception:
        """Return the error saying ``field`` breaks ``rule``."""
        ...


def coerce_page_size(page_size: int, invalid: InvalidField) -> int:
    """Apply AIP-158: 0 means the default, above the maximum is coerced, negative is an error."""
    if page_size < 0:
        raise invalid("page_size", "must not be negative")
    return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def decode_page_token(
    codec: PageTokenCodec,
    fingerprint: str,
    token: str,
    parse: Callable[[list[Any]], _T],
    invalid: InvalidField,
) -> _T | None:
    """Return the position ``token`` resumes after, as ``parse`` reads it from the token's key.

    None when there is no token (the first page). A token this server did not issue for this
    query, or a key ``parse`` rejects (with ``ValueError``, ``InvalidPageToken`` included, or
    ``IndexError``), is ``invalid`` with reason ``PAGE_TOKEN_INVALID``.
    """
    if not token:
        return None
    try:
        return parse(codec.decode(fingerprint, token))
    except (ValueError, IndexError) as exc:
        raise invalid("page_token", str(exc), reason="PAGE_TOKEN_INVALID") from exc
