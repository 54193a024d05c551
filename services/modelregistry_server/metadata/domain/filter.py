"""The ``filter`` and ``order_by`` languages of ``ListModels`` and ``ListModelVersions``.

``parse_filter`` turns an AIP-160 filter into a tree of frozen dataclasses (``And``, ``Or``,
``Not``, ``Compare``) with every value already checked against its field's type;
``parse_order_by`` turns an AIP-132 ``order_by`` into a list of ``OrderKey``. Nothing here
knows about SQL: the PostgreSQL adapter compiles both (``adapters/postgres/filter_sql.py``).

Filter grammar (the AIP-160 subset this registry serves)::

    filter      = [ expression ]
    expression  = factor { "AND" factor }
    factor      = term { "OR" term }             (OR binds tighter than AND, as in AIP-160:
                                                  ``a AND b OR c`` means ``a AND (b OR c)``)
    term        = ( "NOT" | "-" ) term | "(" expression ")" | comparison
    comparison  = field op value
    op          = "=" | "!=" | "<" | "<=" | ">" | ">="

- ``AND``, ``OR`` and ``NOT`` are upper case. Unlike full AIP-160, two terms side by side with
  no operator between them (``a = 1 b = 2``, AIP-160's implicit AND) are rejected: write
  ``AND``. Global text search (a bare value with no field) and the has operator ``:`` are not
  supported either.
- Fields are ``name``, ``labels.<key>``, ``create_time``, ``update_time`` for both kinds;
  ``owner`` for models only; ``version``, ``state``, ``alias``, ``framework``, ``format``,
  ``ready_time``, ``params.<key>``, ``metrics.<key>``, ``card`` (the model card: the
  version's description, matched without regard to case, so ``card = "*fraud*"`` finds the
  versions whose card mentions fraud) and ``scan`` (the file scan's verdict: ``SAFE``,
  ``UNSAFE``, ``UNSCANNED``, ``ERROR``, or ``UNSPECIFIED`` while not scanned yet; ``=`` and
  ``!=`` only) for versions only. On versions,
  ``name`` is the model's id. A key matches ``[a-zA-Z_][a-zA-Z0-9_.-]*``.
- Values are double-quoted strings (escapes ``\\"``, ``\\\\`` and ``\\*``; no others) or bare
  tokens made of letters, digits and ``_-.:+`` (numbers such as ``-1.5e3``, ``true`` /
  ``false``, RFC 3339 timestamps such as ``2026-01-01T00:00:00Z``, or plain words).

Type rules, checked here so a bad filter fails before any SQL runs:

- ``metrics.*``: a number. ``version``: an integer. ``create_time``, ``update_time``,
  ``ready_time``: an RFC 3339 timestamp with an offset, quoted or bare (digits past the
  microsecond are dropped).
- ``state``: ``PENDING``, ``READY``, ``FAILED``, ``ARCHIVED`` or ``DELETED``, in any case and
  optionally with the enum prefix ``MODEL_VERSION_STATE_``; normalized to the upper-case short
  name. ``=`` and ``!=`` only.
- ``name``, ``owner``, ``alias``, ``framework``, ``format``, ``labels.*``: strings. A bare token
  is taken as its literal text (``labels.epoch = 3`` compares with ``"3"``). On ``name`` a
  leading ``models/`` is dropped, so ``name = "models/x"`` and ``name = x`` mean the same.
- ``params.*``: typed by the value: a quoted string or a bare word is a string, a bare number
  is a number (``int`` or ``float``), bare ``true`` / ``false`` is a boolean. The comparison
  only matches parameters of that type.
- Ordering operators (``<``, ``<=``, ``>``, ``>=``) work on numbers, timestamps and
  ``version``; on strings only for ``name``, ``labels.*`` and ``params.*`` (lexicographic).
  ``owner``, ``alias``, ``framework``, ``format``, ``state`` and boolean params take ``=`` and
  ``!=`` only.
- In a quoted string compared with ``=`` or ``!=``, an unescaped ``*`` matches any run of
  characters (the value becomes a ``Wildcard``); ``\\*`` is a literal asterisk. With ordering
  operators ``*`` is always literal.

Every error is ``InvalidArgument("filter", "<what is wrong> at position <n>",
reason="FILTER_INVALID")`` where ``n`` is the 1-based character position of the offending token
(one past the end for a filter that ends too early). A filter is at most
``MAX_FILTER_LENGTH`` characters and nests ``(`` / ``NOT`` at most ``MAX_FILTER_DEPTH`` deep.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NoReturn, TypeAlias, cast

from modelregistry_server.metadata.domain.errors import InvalidArgument
from modelregistry_server.metadata.domain.filter_lexer import (
    INT64_MAX,
    INT64_MIN,
    KEYWORDS,
    Fail,
    Token,
    lex,
    parse_number,
    parse_rfc3339,
)

# The published contract (ListModelsRequest.filter in metadata_service.proto) says 2048.
MAX_FILTER_LENGTH = 2048
MAX_FILTER_DEPTH = 32
MAX_ORDER_KEYS = 2
MAX_ORDER_BY_LENGTH = 1024
FILTER_REASON = "FILTER_INVALID"
ORDER_BY_REASON = "ORDER_BY_INVALID"

ResourceKind = Literal["model", "version"]
FieldKind = Literal[
    "name",
    "owner",
    "state",
    "version",
    "framework",
    "format",
    "alias",
    "card",
    "scan",
    "create_time",
    "update_time",
    "ready_time",
    "labels",
    "params",
    "metrics",
]
Op = Literal["=", "!=", "<", "<=", ">", ">="]
STATES = ("PENDING", "READY", "FAILED", "ARCHIVED", "DELETED")
_SCAN_NAMES = (("SAFE", "UNSAFE", "UNSCANNED", "ERROR", "UNSPECIFIED"), "SCAN_VERDICT_")
STATE_ENUM_PREFIX = "MODEL_VERSION_STATE_"
_NAME_PREFIX = "models/"


@dataclass(frozen=True)
class FieldRef:
    """A filterable or sortable field; ``key`` is set for the maps (labels, params, metrics)."""

    kind: FieldKind
    key: str | None = None

    def __str__(self) -> str:
        return self.kind if self.key is None else f"{self.kind}.{self.key}"


@dataclass(frozen=True)
class Wildcard:
    """A string pattern: the literal ``parts`` with any run of characters between them.

    ``"a*b"`` is ``Wildcard(("a", "b"))``; ``"*"`` is ``Wildcard(("", ""))``.
    """

    parts: tuple[str, ...]


# bool before int matters to anyone dispatching on it: bool is a subclass of int.
Value: TypeAlias = str | bool | int | float | datetime | Wildcard


@dataclass(frozen=True)
class Compare:
    """``field op value``; ``value`` already has the Python type the field needs."""

    field: FieldRef
    op: Op
    value: Value


@dataclass(frozen=True)
class And:
    """Both sides hold."""

    left: Expr
    right: Expr


@dataclass(frozen=True)
class Or:
    """At least one side holds."""

    left: Expr
    right: Expr


@dataclass(frozen=True)
class Not:
    """``expr`` does not hold."""

    expr: Expr


Expr: TypeAlias = And | Or | Not | Compare


@dataclass(frozen=True)
class OrderKey:
    """One ``order_by`` entry."""

    field: FieldRef
    descending: bool = False


# ---------------------------------------------------------------------------- fields

_MAP_FIELDS: frozenset[str] = frozenset({"labels", "params", "metrics"})
_FILTER_FIELDS: dict[ResourceKind, tuple[str, ...]] = {
    "model": ("name", "owner", "labels", "create_time", "update_time"),
    "version": (
        "name",
        "version",
        "state",
        "alias",
        "framework",
        "format",
        "card",
        "scan",
        "labels",
        "params",
        "metrics",
        "create_time",
        "update_time",
        "ready_time",
    ),
}
_ORDER_FIELDS: dict[ResourceKind, tuple[str, ...]] = {
    "model": ("name", "create_time", "update_time"),
    "version": ("version", "create_time", "update_time", "ready_time", "name", "metrics", "params"),
}
_ALL_FIELDS = frozenset(_FILTER_FIELDS["model"] + _FILTER_FIELDS["version"])
_KEY = re.compile(r"[a-zA-Z_][a-zA-Z0-9_.-]*")
_TIME_FIELDS = frozenset({"create_time", "update_time", "ready_time"})
_EQUALITY_ONLY = frozenset({"owner", "alias", "framework", "format", "state", "card", "scan"})
_STRING_FIELDS = frozenset({"name", "owner", "alias", "framework", "format", "labels", "card"})


def _describe_fields(names: tuple[str, ...]) -> str:
    return ", ".join(f"{n}.<key>" if n in _MAP_FIELDS else n for n in names)


def _field_ref(word: str, allowed: tuple[str, ...], usage: str, fail: Fail, pos: int) -> FieldRef:
    """Resolve ``word`` to one of the ``allowed`` fields or fail naming them.

    ``usage`` completes "cannot ..." (e.g. "filter models by") for a field not allowed here.
    """
    colon = word.find(":")
    if colon >= 0:
        fail(
            "the has operator ':' is not supported; compare with =, !=, <, <=, > or >=",
            pos + colon,
        )
    head, dot, key = word.partition(".")
    expected = f"expected one of {_describe_fields(allowed)}"
    if head in _MAP_FIELDS and dot:
        if head not in allowed:
            fail(f"cannot {usage} '{head}.<key>'; {expected}", pos)
        if not _KEY.fullmatch(key):
            fail(
                f"'{word}' has an invalid key; a {head} key starts with a letter or '_' and "
                "holds only letters, digits, '_', '.' and '-'",
                pos + len(head) + 1,
            )
        return FieldRef(cast(FieldKind, head), key)
    if head in _MAP_FIELDS:
        fail(f"field '{head}' needs a key, as in '{head}.<key>'", pos)
    if word in _ALL_FIELDS and word not in allowed:
        fail(f"cannot {usage} '{word}'; {expected}", pos)
    if word not in allowed:
        fail(f"unknown field '{word}'; {expected}", pos)
    return FieldRef(cast(FieldKind, word))


class _Parser:
    def __init__(self, text: str, kind: ResourceKind) -> None:
        self.fail = Fail("filter", FILTER_REASON)
        self.kind = kind
        self.tokens = lex(text, self.fail)
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.type != "end":
            self.index += 1
        return token

    def parse(self) -> Expr:
        expr = self.expression()
        token = self.current
        if token.type != "end":
            self.fail_after_term(token, "end of filter")
        return expr

    def fail_after_term(self, token: Token, closer: str) -> NoReturn:
        what = f"expected AND, OR or {closer}, found {token.describe()}"
        if token.type == "word" and token.text.upper() in KEYWORDS:
            what += " (AND, OR and NOT are upper case)"
        elif token.type == "rparen":
            what = f"unexpected ')' with no matching '('; expected AND, OR or {closer}"
        elif token.type in ("word", "string", "lparen"):
            what += " (terms must be joined with AND or OR)"
        self.fail(what, token.pos)

    def expression(self) -> Expr:
        expr = self.factor()
        while self.current.type == "and":
            self.advance()
            expr = And(expr, self.factor())
        return expr

    def factor(self) -> Expr:
        expr = self.term()
        while self.current.type == "or":
            self.advance()
            expr = Or(expr, self.term())
        return expr

    def enter(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_FILTER_DEPTH:
            self.fail(f"filter nests '(' and NOT more than {MAX_FILTER_DEPTH} deep", token.pos)

    def term(self) -> Expr:
        token = self.current
        if token.type == "not":
            self.advance()
            return self.negated(token)
        if token.type == "word" and token.text.startswith("-"):
            # AIP-160's '-' prefix: negate what follows ("-labels.x = 1" lexes as one word).
            rest = token.text[1:]
            if rest:
                self.tokens[self.index] = Token("word", rest, token.pos + 1)
            else:
                self.advance()
            return self.negated(token)
        if token.type == "lparen":
            self.advance()
            self.enter(token)
            expr = self.expression()
            closing = self.current
            if closing.type != "rparen":
                if closing.type == "end":
                    self.fail(
                        f"expected ')' to close the '(' at {token.pos}, found end of filter",
                        closing.pos,
                    )
                self.fail_after_term(closing, "')'")
            self.advance()
            self.depth -= 1
            return expr
        return self.comparison()

    def negated(self, token: Token) -> Expr:
        self.enter(token)
        expr = Not(self.term())
        self.depth -= 1
        return expr

    def comparison(self) -> Expr:
        token = self.advance()
        if token.type != "word":
            what = f"expected a field name, NOT or '(', found {token.describe()}"
            if token.type == "string":
                what += " (text search without a field is not supported)"
            self.fail(what, token.pos)
        usage = f"filter {self.kind}s by"
        field = _field_ref(token.text, _FILTER_FIELDS[self.kind], usage, self.fail, token.pos)
        op_token = self.advance()
        if op_token.type != "op":
            self.fail(
                f"expected a comparison operator (=, !=, <, <=, >, >=) after '{field}', "
                f"found {op_token.describe()}",
                op_token.pos,
            )
        op = cast(Op, op_token.text)
        value_token = self.advance()
        if value_token.type not in ("word", "string"):
            what = f"expected a value after '{op}', found {value_token.describe()}"
            if value_token.type in ("and", "or", "not"):
                what += ' (quote it, as in "AND", to compare with that text)'
            self.fail(what, value_token.pos)
        value = self.value(field, op, op_token, value_token)
        return Compare(field, op, value)

    def value(self, field: FieldRef, op: Op, op_token: Token, token: Token) -> Value:
        kind = field.kind
        fail = self.fail
        ordering = op not in ("=", "!=")
        quoted = token.type == "string"
        text = token.text
        if ordering and kind in _EQUALITY_ONLY:
            fail(f"operator '{op}' is not supported on {field}; use = or !=", op_token.pos)
        if kind == "metrics":
            number = None if quoted else parse_number(text)
            if number is None:
                fail(f"expected a number for {field}, found {token.describe()}", token.pos)
            return self.to_float(number, token)
        if kind == "version":
            number = None if quoted else parse_number(text)
            if not isinstance(number, int):
                fail(f"expected an integer version number, found {token.describe()}", token.pos)
            if not INT64_MIN <= number <= INT64_MAX:
                fail("version number is out of range", token.pos)
            return number
        if kind in _TIME_FIELDS:
            stamp = parse_rfc3339(text)
            if stamp is None:
                fail(
                    f'expected an RFC 3339 timestamp such as "2025-01-31T00:00:00Z" for '
                    f"{field}, found {token.describe()}",
                    token.pos,
                )
            return stamp
        if kind in ("state", "scan"):  # an enum: its value names, with or without the prefix
            names, prefix = (STATES, STATE_ENUM_PREFIX) if kind == "state" else _SCAN_NAMES
            upper = text.upper().removeprefix(prefix)
            if upper not in names:
                fail(f"expected a {kind} ({', '.join(names)}), found {token.describe()}", token.pos)
            return "" if upper == "UNSPECIFIED" else upper  # a scan not done yet is stored ''
        if kind == "params" and not quoted:
            if text in ("true", "false"):
                if ordering:
                    fail(f"operator '{op}' is not supported on booleans; use = or !=", op_token.pos)
                return text == "true"
            number = parse_number(text)
            if number is not None:
                return number if isinstance(number, int) else self.to_float(number, token)
        # A string: name, owner, alias, framework, format, labels.*, or a string param.
        assert kind in _STRING_FIELDS or kind == "params"
        if quoted and len(token.parts) > 1 and not ordering:
            parts = list(token.parts)
            if kind == "name":
                parts[0] = parts[0].removeprefix(_NAME_PREFIX)
            return Wildcard(tuple(parts))
        return text.removeprefix(_NAME_PREFIX) if kind == "name" else text

    def to_float(self, number: int | float, token: Token) -> float:
        try:
            value = float(number)
        except OverflowError:
            value = math.inf
        if math.isinf(value):
            self.fail(f"number {token.describe()} is out of range", token.pos)
        return value


def parse_filter(text: str, kind: ResourceKind) -> Expr | None:
    """Parse an AIP-160 ``filter`` for listing ``kind``; None when it is empty or blank.

    Raises:
        InvalidArgument: ``field="filter"``, ``reason="FILTER_INVALID"``; the rule names what
            was expected and ends with ``at position <n>`` (1-based).
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidArgument(
            "filter",
            f"filter is longer than {MAX_FILTER_LENGTH} characters at position "
            f"{MAX_FILTER_LENGTH + 1}",
            reason=FILTER_REASON,
        )
    if not text.strip():
        return None
    return _Parser(text, kind).parse()


# ---------------------------------------------------------------------------- order_by

_ORDER_ITEM = re.compile(r"[^\s,]+")


def parse_order_by(text: str, kind: ResourceKind) -> list[OrderKey]:
    """Parse an AIP-132 ``order_by`` (``"metrics.accuracy desc, create_time"``).

    Each entry is a field optionally followed by ``asc`` (the default) or ``desc``, in any
    case. At most ``MAX_ORDER_KEYS`` entries, no field twice. Entries may mix directions. An
    empty or blank ``text`` gives ``[]`` (the caller applies its default order).

    Raises:
        InvalidArgument: ``field="order_by"``, ``reason="ORDER_BY_INVALID"``, naming the
            position of the offending entry.
    """
    fail = Fail("order_by", ORDER_BY_REASON)
    if len(text) > MAX_ORDER_BY_LENGTH:
        fail(f"order_by is longer than {MAX_ORDER_BY_LENGTH} characters", MAX_ORDER_BY_LENGTH + 1)
    if not text.strip():
        return []
    allowed = _ORDER_FIELDS[kind]
    keys: list[OrderKey] = []
    offset = 0
    for chunk in text.split(","):
        words = [(m.group(), offset + m.start() + 1) for m in _ORDER_ITEM.finditer(chunk)]
        end = offset + len(chunk) + 1  # position of the ',' (or one past the end)
        offset += len(chunk) + 1
        if not words:
            fail(f"expected a field name ({_describe_fields(allowed)}), found nothing", end)
        (word, pos), rest = words[0], words[1:]
        if len(keys) == MAX_ORDER_KEYS:
            fail(f"at most {MAX_ORDER_KEYS} sort fields are allowed", pos)
        field = _field_ref(word, allowed, f"sort {kind}s by", fail, pos)
        descending = False
        if rest:
            direction, dir_pos = rest[0]
            if direction.lower() not in ("asc", "desc"):
                fail(f"expected asc, desc or ',' after '{word}', found '{direction}'", dir_pos)
            descending = direction.lower() == "desc"
        if len(rest) > 1:
            fail(f"expected ',' or end of order_by, found '{rest[1][0]}'", rest[1][1])
        if any(k.field == field for k in keys):
            fail(f"'{field}' is listed twice", pos)
        keys.append(OrderKey(field, descending))
    return keys
