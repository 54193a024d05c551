"""The HTTP header rules of file URLs (RFC 9110), as pure functions: ``Range``, entity-tag
conditions, ``Content-Disposition`` and a safe ``Content-Type``.

Kept apart from ``files.py`` so that each rule is tested without a server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

FALLBACK_MEDIA_TYPE = "application/octet-stream"
# A number longer than this is larger than any file; it is never converted (Python refuses
# to convert strings of more than 4300 digits, and there is no point in trying).
_MAX_DIGITS = 19
_RANGE_SPEC = re.compile(r"([0-9]*)-([0-9]*)")
_ENTITY_TAG = re.compile(r'(W/)?"([^"]*)"')
_TCHARS = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"  # an HTTP token (RFC 9110 §5.6.2)
_MEDIA_TYPE = re.compile(
    rf"{_TCHARS}/{_TCHARS}"
    rf"(?:[ \t]*;[ \t]*{_TCHARS}=(?:{_TCHARS}|\"[^\"\\\x00-\x1f\x7f]*\"))*"
)
_MAX_MEDIA_TYPE_CHARS = 255


class RangeNotSatisfiable(Exception):
    """A single byte range that starts at or past the end of the file (answer 416)."""


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``start`` to ``end`` of a file, both included (as in ``Content-Range``)."""

    start: int
    end: int

    @property
    def length(self) -> int:
        """How many bytes the range holds."""
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        """The ``Content-Range`` value of this range of a ``size``-byte file."""
        return f"bytes {self.start}-{self.end}/{size}"


def _number(digits: str) -> int:
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


def requested_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range a ``Range`` header asks for, or None to answer the whole file.

    ``bytes=a-b``, ``bytes=a-`` and ``bytes=-n`` are served; an end past the file is cut to
    its last byte. A header that is not a valid byte-range set, of another unit, or that asks
    for several ranges is ignored (RFC 9110 §14.2 lets a server ignore ``Range``): the answer
    is then the whole file with status 200, never ``multipart/byteranges``.

    Raises:
        RangeNotSatisfiable: The single range starts at or past the end (or is ``-0``).
    """
    if not header:
        return None
    unit, _, ranges = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    specs = [spec.strip() for spec in ranges.split(",") if spec.strip()]
    if len(specs) != 1:
        return None
    match = _RANGE_SPEC.fullmatch(specs[0])
    if match is None or match.group(0) == "-":
        return None
    first, last = match.groups()
    if not first:  # a suffix: the last n bytes
        suffix = _number(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return ByteRange(max(0, size - suffix), size - 1)
    start = _number(first)
    if last and _number(last) < start:
        return None  # not a valid range-spec: ignored, like any invalid Range
    if start >= size:
        raise RangeNotSatisfiable
    end = _number(last) if last else size - 1
    return ByteRange(start, min(end, size - 1))


def _tags(header: str) -> list[tuple[bool, str]]:
    """``(weak, opaque tag)`` of each entity tag in a list header."""
    return [(bool(weak), tag) for weak, tag in _ENTITY_TAG.findall(header)]


def none_match(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` holds ``etag`` (or ``*``): the client has the file (304).

    Weak comparison, as RFC 9110 §13.1.2 asks: ``W/"x"`` matches ``"x"``.
    """
    if header is None:
        return False
    if header.strip() == "*":
        return True
    return any(tag == etag for _, tag in _tags(header))


def range_allowed(if_range: str | None, etag: str) -> bool:
    """Whether a ``Range`` may be served under ``If-Range`` (RFC 9110 §13.1.5).

    Only a strong entity tag equal to ``etag`` lets the range through. A weak tag never does,
    and neither does a date: file URLs send no ``Last-Modified``, so a date cannot be checked,
    and the whole file is the safe answer.
    """
    if if_range is None:
        return True
    match = _ENTITY_TAG.fullmatch(if_range.strip())
    return match is not None and not match.group(1) and match.group(2) == etag


def content_disposition(path: str) -> str:
    """``attachment`` with the file's base name, as RFC 6266 suggests: an ASCII ``filename``
    for old clients and the exact UTF-8 name in ``filename*`` (RFC 8187)."""
    name = path.rsplit("/", 1)[-1]
    plain = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


def safe_media_type(media_type: str) -> str:
    """The manifest's media type if it is a well-formed one, else ``application/octet-stream``.

    A manifest's media type is whatever the pusher wrote; only a ``type/subtype`` with
    parameters passes, so nothing else (line breaks in particular) reaches a header.
    """
    text = media_type.strip()
    if text and len(text) <= _MAX_MEDIA_TYPE_CHARS and _MEDIA_TYPE.fullmatch(text):
        return text
    return FALLBACK_MEDIA_TYPE
