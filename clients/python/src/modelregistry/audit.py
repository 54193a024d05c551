"""Check an export of the registry's audit log without trusting the registry.

The server chains every audit event: event ``n`` stores ``hash_n = SHA-256(hash_{n-1} ||
canonical(event_n))``, where ``hash_0`` is 32 zero bytes and ``canonical`` is the event's
fields as one JSON object in the JSON Canonicalization Scheme (RFC 8785): keys sorted, no
whitespace, numbers as IEEE doubles written as ECMAScript writes them. Editing, deleting or
reordering a stored event breaks the chain from there on; rewriting the whole rest of the chain
changes the head hash, which is why you keep the head hash of each verification somewhere the
database administrators cannot write (a ticket, a git repository, a WORM bucket) and check it
later.

``modelregistry audit export`` (or :func:`export_record` over ``Client.export_audit_log()``)
writes one JSON object per line: the canonical fields (:data:`CANONICAL_FIELDS`) plus
``chain_position``, ``previous_hash`` and ``hash`` (64 lowercase hex characters).
:func:`verify_export` recomputes the chain from such lines::

    from modelregistry.audit import verify_export

    with open("audit.jsonl") as lines:
        result = verify_export(lines, anchor=(1200, "9f2c...e1"))  # a head you stored
    if not result.ok:
        raise SystemExit(result.problem)
    print(result.last_position, result.head_hash)  # store these for next time

This module is deliberately independent of the server's implementation (it must agree with it,
and a test checks that it does); it needs only the standard library.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelregistry.metadata.v1 import audit_event_pb2

__all__ = [
    "CANONICAL_FIELDS",
    "GENESIS_HASH",
    "ExportCheck",
    "canonical_encoding",
    "chain_hash",
    "export_record",
    "verify_export",
]

GENESIS_HASH = "0" * 64
# The keys of the object the hash covers (see the module docstring).
CANONICAL_FIELDS = (
    "name", "event_time", "actor", "method", "resource", "model", "before", "after",
    "request_id", "trace_id", "denied_permission",
)  # fmt: skip
CHAIN_FIELDS = ("chain_position", "previous_hash", "hash")


def canonical_encoding(fields: Mapping[str, Any]) -> bytes:
    """The RFC 8785 encoding of ``fields`` (an event's :data:`CANONICAL_FIELDS`), UTF-8."""
    return _jcs(dict(fields)).encode("utf-8")


def chain_hash(previous_hash: str, fields: Mapping[str, Any]) -> str:
    """The hash (hex) of an event with these fields after an event whose hash is given."""
    digest = hashlib.sha256(bytes.fromhex(previous_hash))
    digest.update(canonical_encoding(fields))
    return digest.hexdigest()


def _jcs(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return _ecmascript_number(value)
    if isinstance(value, Mapping):
        keys = sorted(value, key=lambda key: str(key).encode("utf-16-be"))
        return "{" + ",".join(f"{_jcs(str(key))}:{_jcs(value[key])}" for key in keys) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_jcs(item) for item in value) + "]"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _ecmascript_number(value: float) -> str:
    try:
        x = float(value)
    except OverflowError:
        x = math.inf if value > 0 else -math.inf
    if math.isnan(x):
        return '"NaN"'
    if math.isinf(x):
        return '"Infinity"' if x > 0 else '"-Infinity"'
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    # Python's repr is the shortest round-trip form: "d.ddde±xx" or a plain decimal.
    mantissa, _, exp = repr(abs(x)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    significand = (whole + fraction).lstrip("0")
    # Where the decimal point falls, counted in digits of ``significand`` from its start.
    point = len(whole) + int(exp or 0) - (len(whole + fraction) - len(significand))
    digits = significand.rstrip("0")
    k = len(digits)
    if k <= point <= 21:
        return sign + digits + "0" * (point - k)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * -point + digits
    e = point - 1
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{sign}{head}e{'+' if e >= 0 else '-'}{abs(e)}"


def export_record(event: audit_event_pb2.AuditEvent) -> dict[str, Any]:
    """An exported audit event as one JSON Lines object: canonical fields and chain fields."""
    from google.protobuf import json_format

    when = event.event_time.ToDatetime(tzinfo=UTC)
    return {
        "chain_position": event.chain_position,
        "previous_hash": event.previous_hash,
        "hash": event.hash,
        "name": event.name,
        "event_time": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond:06d}Z",
        "actor": event.actor,
        "method": event.method,
        "resource": event.resource,
        "model": event.model,
        "before": json_format.MessageToDict(event.before) if event.HasField("before") else None,
        "after": json_format.MessageToDict(event.after) if event.HasField("after") else None,
        "request_id": event.request_id,
        "trace_id": event.trace_id,
        "denied_permission": event.denied_permission,
    }


@dataclass(frozen=True)
class ExportCheck:
    """What :func:`verify_export` found.

    ``ok`` is True when every line follows the one before it; ``problem`` (None when ok) names
    the first line that does not, with ``event`` and ``position`` of it. ``head_hash`` is the
    hash of the last good line: store it, with ``last_position``, as the next anchor.
    """

    ok: bool
    count: int
    first_position: int
    last_position: int
    head_hash: str
    problem: str | None = None
    event: str | None = None
    position: int | None = None


def verify_export(
    lines: Iterable[str | bytes | Mapping[str, Any]],
    *,
    anchor: tuple[int, str] | None = None,
) -> ExportCheck:
    """Recompute the hash chain of an export (JSON Lines, or parsed objects) in file order.

    An export that starts at position 1 is checked from the all-zero hash; one that starts
    later (``--since``) trusts its first line's ``previous_hash``: check it against an anchor
    you stored. ``anchor`` is ``(position, hash)``: the line at that position must have that
    hash, and the export must reach it.
    """
    state = _Walk()
    for number, line in enumerate(lines, start=1):
        record = dict(line) if isinstance(line, Mapping) else _parse(line)
        if record is None:
            continue  # a blank line
        problem = state.step(number, record, anchor)
        if problem is not None:
            return state.result(problem, record)
    if anchor is not None and not state.first <= anchor[0] <= state.last:
        where = f"positions {state.first} to {state.last}" if state.count else "no events"
        return state.result(f"the anchor's position {anchor[0]} is not in the export ({where})")
    return state.result(None)


def _parse(line: str | bytes) -> dict[str, Any] | None:
    text = line.decode("utf-8") if isinstance(line, bytes) else line
    if not text.strip():
        return None
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("an export line is not a JSON object")
    return value


class _Walk:
    def __init__(self) -> None:
        self.count = 0
        self.first = 0
        self.last = 0
        self.hash = GENESIS_HASH

    def step(
        self, number: int, record: dict[str, Any], anchor: tuple[int, str] | None
    ) -> str | None:
        keys = set(record) - set(CHAIN_FIELDS)
        if keys != set(CANONICAL_FIELDS):
            odd = sorted(keys ^ set(CANONICAL_FIELDS))
            return f"line {number}: not an exported audit event (fields {', '.join(odd)})"
        position, previous = record["chain_position"], record["previous_hash"]
        name = record["name"]
        if self.count == 0 and position == 1 and previous != GENESIS_HASH:
            return f"{name} at position 1 does not start from the all-zero hash"
        if self.count and position != self.last + 1:
            return f"{name}: position {position} follows {self.last} (events missing or moved)"
        if self.count and previous != self.hash:
            return f"{name} at position {position} does not follow the event before it"
        fields = {key: record[key] for key in CANONICAL_FIELDS}
        if chain_hash(previous, fields) != record["hash"]:
            return f"{name} at position {position} was changed: its fields do not give its hash"
        if anchor is not None and position == anchor[0] and record["hash"] != anchor[1]:
            return f"{name} at the anchor's position {position} does not have the anchored hash"
        self.first = self.first or position
        self.count, self.last, self.hash = self.count + 1, position, record["hash"]
        return None

    def result(self, problem: str | None, record: Mapping[str, Any] | None = None) -> ExportCheck:
        return ExportCheck(
            ok=problem is None,
            count=self.count,
            first_position=self.first,
            last_position=self.last,
            head_hash=self.hash,
            problem=problem,
            event=None if record is None else str(record.get("name")),
            position=None if record is None else record.get("chain_position"),
        )
