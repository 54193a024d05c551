"""The audit log's hash chain: the canonical encoding of an event, the link hash, and the walk
that finds the first event that no longer fits.

Every audit event gets a chain position (1, 2, 3, ...) and a hash::

    hash = SHA-256( previous_hash (32 raw bytes; 32 zero bytes before position 1)
                    || UTF-8 bytes of canonical_event(event) )

``canonical_event`` is the event's fields as one JSON object in the JSON Canonicalization
Scheme (RFC 8785, "JCS"): keys sorted by their UTF-16 code units, no whitespace, strings with
only the escapes JSON requires (``\\"``, ``\\\\``, ``\\b \\f \\n \\r \\t``, other control
characters as ``\\u00xx``) and no others, numbers as IEEE-754 doubles written the way
ECMAScript writes them (``1``, ``0.5``, ``1e+21``). The object has exactly these keys:

=====================  ===============================================================
``name``               ``auditEvents/{id}``
``event_time``         UTC, microseconds, always 6 digits: ``2025-01-31T12:00:00.123456Z``
``actor``              who made the call
``method``             the RPC (``SetAlias``)
``resource``           what it named (``models/m/aliases/production``)
``model``              ``models/{model}``, or ``""`` for registry-wide events
``before``, ``after``  the snapshots (JSON objects), or ``null``
``request_id``         ``""`` when the call had none
``trace_id``           ``""`` when the call was not traced
``denied_permission``  ``""`` except on the record of a refused call
=====================  ===============================================================

The position is not part of the encoding: the previous hash binds each event to the one
before it. The SDK's ``modelregistry.audit`` implements the same encoding independently, so an
export can be checked without this server's code (a unit test holds the two together).

This module is the pure part (standard library only): the database adapter
(``common/adapters/audit_log``) assigns positions and hashes, the verify use case walks the
stored chain through :class:`ChainVerifier`.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

GENESIS = bytes(32)  # the "previous hash" of position 1
HASH_BYTES = 32


def canonical_json(value: object) -> str:
    """``value`` (None, bool, int, float, str, lists and str-keyed mappings) in RFC 8785 form.

    A non-finite float (which JSON cannot hold and the registry never writes) is encoded as
    the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``, so that any stored row still has
    an encoding and the chain never stalls on one.
    """
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts)


def _encode(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int | float):
        out.append(es_number(value))
    elif isinstance(value, Mapping):
        out.append("{")
        for index, key in enumerate(sorted(value, key=_utf16_order)):
            if index:
                out.append(",")
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(":")
            _encode(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"not a JSON value: {type(value).__name__}")


def _utf16_order(key: object) -> bytes:
    # Big-endian UTF-16 bytes compare like the code units RFC 8785 sorts by.
    return str(key).encode("utf-16-be", "surrogatepass")


def es_number(value: float) -> str:
    """A number as ECMAScript's Number.prototype.toString writes its double (RFC 8785 3.2.2.3)."""
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the largest double
        number = math.inf if value > 0 else -math.inf
    if not math.isfinite(number):
        return json.dumps("NaN" if math.isnan(number) else ("-" if number < 0 else "") + "Infinity")
    if number == 0:
        return "0"
    # repr gives the shortest digits that read back as the same double, as ECMAScript asks.
    _, digit_tuple, exponent = Decimal(repr(abs(number))).as_tuple()
    assert isinstance(exponent, int)
    shortest = "".join(map(str, digit_tuple))
    digits = shortest.rstrip("0")
    exponent += len(shortest) - len(digits)
    k = len(digits)
    n = exponent + k  # the decimal point sits after n digits
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        text = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return ("-" if number < 0 else "") + text


def event_time_text(when: datetime) -> str:
    """The fixed form of an event time in the encoding: UTC, 6 fractional digits, ``Z``."""
    t = when.astimezone(UTC)
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        f".{t.microsecond:06d}Z"
    )


@dataclass(frozen=True)
class EventFields:
    """What the hash covers: every stored field of an event except its chain columns."""

    event_id: int
    event_time: datetime
    actor: str
    method: str
    resource: str
    model_id: str | None
    before: Mapping[str, object] | None
    after: Mapping[str, object] | None
    request_id: str | None
    trace_id: str | None
    denied_permission: str | None

    def canonical(self) -> bytes:
        """The event's canonical encoding (module docstring), as UTF-8 bytes."""
        document = {
            "name": f"auditEvents/{self.event_id}",
            "event_time": event_time_text(self.event_time),
            "actor": self.actor,
            "method": self.method,
            "resource": self.resource,
            "model": f"models/{self.model_id}" if self.model_id else "",
            "before": None if self.before is None else dict(self.before),
            "after": None if self.after is None else dict(self.after),
            "request_id": self.request_id or "",
            "trace_id": self.trace_id or "",
            "denied_permission": self.denied_permission or "",
        }
        return canonical_json(document).encode("utf-8", "surrogatepass")


def json_object(text: str | None) -> dict[str, object] | None:
    """A stored snapshot (jsonb text) as the mapping the encoding covers.

    The registry only ever stores objects; anything else (a row edited by hand) is wrapped
    as ``{"": value}`` instead of failing, so the chainer and a verification still get an
    encoding, the same one, and the edit shows as a broken hash.
    """
    if text is None:
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else {"": value}


def link_hash(previous_hash: bytes, canonical: bytes) -> bytes:
    """The hash of an event whose predecessor's hash is ``previous_hash``."""
    return hashlib.sha256(previous_hash + canonical).digest()


@dataclass(frozen=True)
class ChainLink:
    """One chained event as stored: its position, hashes, and its encoding as it reads now."""

    position: int
    event_id: int
    event_time: datetime
    canonical: bytes
    previous_hash: bytes
    hash: bytes


@dataclass(frozen=True)
class ChainHead:
    """The last position assigned and its hash (position 0 and ``GENESIS`` when empty)."""

    position: int
    hash: bytes


class ProblemKind(enum.Enum):
    """What a walk of the chain can find wrong (the first one found is reported)."""

    EDITED = "EDITED"  # an event's content or stored hash no longer gives its hash
    MISSING = "MISSING"  # positions are absent: events were deleted
    REORDERED = "REORDERED"  # an event does not follow the one before it
    ANCHOR_MISMATCH = "ANCHOR_MISMATCH"  # the anchored position no longer has that hash


@dataclass(frozen=True)
class ChainProblem:
    """The first inconsistency: which position, which event (if one is there), and why."""

    kind: ProblemKind
    position: int
    event_id: int | None
    event_time: datetime | None
    description: str


class ChainVerifier:
    """Checks chained events fed in position order; remembers the first problem.

    ``anchor`` is a (position, hash) recorded earlier outside the database: the event at that
    position must still have that hash, which catches a chain rewritten from there on.
    """

    def __init__(self, anchor: ChainHead | None = None) -> None:
        self.anchor = anchor
        self.problem: ChainProblem | None = None
        self.count = 0
        self.last: ChainLink | None = None

    def feed(self, link: ChainLink) -> ChainProblem | None:
        """Check the next event; return the first problem found so far (None while intact)."""
        if self.problem is not None:
            return self.problem
        self.problem = self._check(link)
        if self.problem is None:
            self.count += 1
            self.last = link
        return self.problem

    def _check(self, link: ChainLink) -> ChainProblem | None:
        expected = 1 if self.last is None else self.last.position + 1
        previous = GENESIS if self.last is None else self.last.hash

        def problem(kind: ProblemKind, description: str) -> ChainProblem:
            return ChainProblem(kind, link.position, link.event_id, link.event_time, description)

        name = f"auditEvents/{link.event_id}"
        if link.position > expected:  # named by the first missing position
            missing = _positions(expected, link.position - 1)
            return ChainProblem(
                ProblemKind.MISSING, expected, link.event_id, link.event_time,
                f"chain {missing} missing (deleted?): the next event is {name} at position "
                f"{link.position}",
            )  # fmt: skip
        if link.position < expected:
            return problem(ProblemKind.REORDERED, f"{name} repeats chain position {link.position}")
        if link_hash(link.previous_hash, link.canonical) != link.hash:
            return problem(
                ProblemKind.EDITED,
                f"{name} at position {link.position} was changed after it was chained: its "
                "content no longer gives its hash",
            )
        if link.previous_hash != previous:
            return problem(
                ProblemKind.REORDERED,
                f"{name} at position {link.position} does not follow the event before it (its "
                "previous hash differs): events were reordered, or the one before was replaced",
            )
        anchor = self.anchor
        if anchor is not None and link.position == anchor.position and link.hash != anchor.hash:
            return problem(
                ProblemKind.ANCHOR_MISMATCH,
                f"{name} at the anchor's position {anchor.position} has hash {link.hash.hex()}, "
                f"not the anchored {anchor.hash.hex()}: the chain was rewritten",
            )
        return None

    def finish(self, head: ChainHead) -> ChainProblem | None:
        """After the last event up to ``head``: check the chain reaches the head (and anchor)."""
        if self.problem is not None:
            return self.problem
        last_position = 0 if self.last is None else self.last.position
        last_hash = GENESIS if self.last is None else self.last.hash
        if last_position < head.position:
            self.problem = ChainProblem(
                ProblemKind.MISSING, last_position + 1, None, None,
                f"chain {_positions(last_position + 1, head.position)} missing (deleted?): "
                f"the log ends at position {last_position}, its recorded head is at "
                f"{head.position}",
            )  # fmt: skip
        elif last_hash != head.hash:
            self.problem = ChainProblem(
                ProblemKind.EDITED, last_position,
                None if self.last is None else self.last.event_id,
                None if self.last is None else self.last.event_time,
                f"the last event (position {last_position}) has hash {last_hash.hex()}, but the "
                f"recorded head hash is {head.hash.hex()}: the event or the head was rewritten",
            )  # fmt: skip
        elif self.anchor is not None and self.anchor.position > last_position:
            self.problem = ChainProblem(
                ProblemKind.ANCHOR_MISMATCH, self.anchor.position, None, None,
                f"the chain ends at position {last_position}, before the anchor's position "
                f"{self.anchor.position}: events were removed from its end",
            )  # fmt: skip
        return self.problem


def _positions(first: int, last: int) -> str:
    return f"position {first} is" if first == last else f"positions {first} to {last} are"
