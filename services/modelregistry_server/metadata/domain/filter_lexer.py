"""The lexer of the ``filter`` language and the literal forms it reads (numbers, RFC 3339).

Split from ``filter.py`` (the parser and the syntax tree) so each stays a size a reader can
hold; nothing here is public API except ``parse_rfc3339``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal, NoReturn

from modelregistry_server.metadata.domain.errors import InvalidArgument


class Fail:
    """Raises the ``InvalidArgument`` of one request field, with the position appended."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason

    def __call__(self, what: str, pos: int) -> NoReturn:
        raise InvalidArgument(self.field, f"{what} at position {pos}", reason=self.reason)


# ---------------------------------------------------------------------------- lexer

TokenType = Literal["word", "string", "op", "lparen", "rparen", "and", "or", "not", "end"]


@dataclass(frozen=True)
class Token:
    type: TokenType
    text: str  # the source text (for strings: the unescaped contents)
    pos: int  # 1-based
    # For strings: the contents split at unescaped '*' (one part when there is none).
    parts: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.type == "end":
            return "end of filter"
        if self.type == "string":
            shown = self.text if len(self.text) <= 20 else self.text[:20] + "..."
            return f'the string "{shown}"'
        shown = self.text if len(self.text) <= 30 else self.text[:30] + "..."
        return f"'{shown}'"


_BARE = re.compile(r"[A-Za-z0-9_\-.:+]+")
_SPACE = re.compile(r"\s+")
KEYWORDS: dict[str, TokenType] = {"AND": "and", "OR": "or", "NOT": "not"}


def lex(text: str, fail: Fail) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        pos = i + 1
        if ch.isspace():
            match = _SPACE.match(text, i)
            assert match is not None
            i = match.end()
        elif ch == "(":
            tokens.append(Token("lparen", ch, pos))
            i += 1
        elif ch == ")":
            tokens.append(Token("rparen", ch, pos))
            i += 1
        elif ch in "<>!=":
            two = text[i : i + 2]
            if two in ("<=", ">=", "!="):
                tokens.append(Token("op", two, pos))
                i += 2
            elif two == "==":
                fail("unknown operator '=='; use '=' for equality", pos)
            elif ch == "!":
                fail("unexpected '!'; use '!=' to compare or NOT to negate", pos)
            else:
                tokens.append(Token("op", ch, pos))
                i += 1
        elif ch == '"':
            token, i = _lex_string(text, i, fail)
            tokens.append(token)
        elif _BARE.match(ch):
            match = _BARE.match(text, i)
            assert match is not None
            word = match.group()
            tokens.append(Token(KEYWORDS.get(word, "word"), word, pos))
            i = match.end()
        elif ch == "'":
            fail('unexpected "\'"; strings are written in double quotes', pos)
        elif ch == "*":
            fail("unexpected '*'; a wildcard must be inside a double-quoted string", pos)
        else:
            fail(f"unexpected character {ch!r}", pos)
    tokens.append(Token("end", "", n + 1))
    return tokens


def _lex_string(text: str, start: int, fail: Fail) -> tuple[Token, int]:
    """Read the quoted string opening at ``text[start]``; return it and the index after it."""
    parts: list[str] = []
    current: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            parts.append("".join(current))
            contents = "*".join(parts)
            return Token("string", contents, start + 1, tuple(parts)), i + 1
        if ch == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt not in ('"', "\\", "*"):
                shown = "\\" + nxt if nxt else "\\ at the end"
                fail(f'invalid escape {shown!r} in a string; only \\", \\\\ and \\* exist', i + 1)
            current.append(nxt)
            i += 2
        elif ch == "*":
            parts.append("".join(current))
            current = []
            i += 1
        else:
            current.append(ch)
            i += 1
    fail("unterminated string (missing closing '\"')", start + 1)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------- values

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def parse_rfc3339(text: str) -> datetime | None:
    """Return ``text`` as an aware UTC datetime, or None if it is not an RFC 3339 timestamp.

    Digits past the microsecond are dropped.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, offset = match.group(7), match.group(8)
    micros = int((fraction[1:] + "000000")[:6]) if fraction else 0
    try:
        if offset in ("Z", "z"):
            tz: timezone = UTC
        else:
            off_h, off_m = int(offset[1:3]), int(offset[4:6])
            if off_h > 23 or off_m > 59:
                return None
            delta = timedelta(hours=off_h, minutes=off_m)
            tz = timezone(-delta if offset[0] == "-" else delta)
        value = datetime(year, month, day, hour, minute, second, micros, tzinfo=tz)
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def parse_number(text: str) -> int | float | None:
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text) and any(c.isdigit() for c in text):
        return float(text)
    return None
