"""Hypothesis strategies that build the wire bytes of any request message from its descriptor.

Four shapes, mixed: well-formed messages whose fields hold hostile values (control
characters, NUL, huge and negative numbers, non-ASCII digits, out-of-range timestamps,
unknown enum values, deep nesting), the same with one string field overwritten on the wire
by invalid UTF-8 (the Python protobuf API refuses to build such a message, so it is spliced
into the bytes), plain random bytes, and a valid request (``tests/support/rpc_requests.py``)
with one or two of its fields replaced by hostile values, which gets past the first checks
into the code behind them. Values lean towards names the server knows (model
``m``, its versions and aliases) so calls get past the first check into the code behind it.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from tests.support.rpc_requests import ABSENT, DIGEST, MODEL, PENDING_VERSION, VERSION

_INT64 = (-(2**63), 2**63 - 1)
_INT32 = (-(2**31), 2**31 - 1)
_UINT64 = (0, 2**64 - 1)
_UINT32 = (0, 2**32 - 1)
_MAX_DEPTH = 3

# Strings the server has rules for, and strings that broke such rules elsewhere.
HOSTILE_STRINGS = [
    "", " ", "m", "M", "m\n", "m\x00", "\x00", "a\x00b", "\x7f", "\u202e", "\ufeff", "e\u0301",
    "\u00e9", "../../etc/passwd", "/abs", "a//b", "./a", "C:\\w", "x" * 300, "y" * 70_000,
    MODEL, VERSION, PENDING_VERSION, "models/m/versions/0", "models/m/versions/-1",
    "models/m/versions/99999999999999999999", "models/m/versions/²", "models/m/versions/١٢",
    "models/m/versions/1\n", "models/-", "models/m/aliases/production", "m@production",
    "m:1", "m:²", "m@", "@", ":", "production", "staging", "*", "team-a-*", "group:ml",
    f"blobs/{DIGEST}", f"blobs/{ABSENT}", DIGEST, DIGEST.upper(), DIGEST + "\n", ABSENT,
    "uploadSessions/" + "0" * 32, "tokens/0123456789abcdef", "roleBindings/0123456789abcdef",
    "00000000-0000-0000-0000-000000000000", "event_time desc", "create_time asc, name",
    'labels.team = "a"', "metrics.auc > 0.9 AND", "(((((((((", "name = '\x00'", "%", "_",
    "admin", "viewer", "writer", "maintainer", "impersonator", "bogus-role",
]  # fmt: skip
_TEXT = st.one_of(
    st.sampled_from(HOSTILE_STRINGS),
    st.text(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=8),  # control characters
    st.builds(lambda s: MODEL + "/" + s, st.text(max_size=20)),
    st.builds(lambda s: "models/" + s, st.text(alphabet="abcm-_0129/²@:.", max_size=20)),
)


def _int(bounds: tuple[int, int]) -> st.SearchStrategy[int]:
    low, high = bounds
    edges = [low, high, 0, -1, 1, 2**31, 2**53 + 1]
    return st.one_of(
        st.sampled_from([e for e in edges if low <= e <= high]), st.integers(low, high)
    )


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return _TEXT
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(width=64 if kind == FieldDescriptor.TYPE_DOUBLE else 32)
    if kind == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), _int(_INT32))  # unknown values too
    if kind in (
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_SFIXED64,
    ):
        return _int(_INT64)
    if kind in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return _int(_UINT64)
    if kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return _int(_UINT32)
    return _int(_INT32)


def _time_like(name: str) -> st.SearchStrategy[dict[str, int]]:
    """Timestamp and Duration fields, in and far out of their valid ranges."""
    seconds = st.one_of(
        st.sampled_from([0, -1, 1, 60, 253402300799, 253402300800, -62135596801, 315576000001]),
        _int(_INT64),
    )
    nanos = st.one_of(st.sampled_from([0, 999_999_999, 1_000_000_000, -1]), _int(_INT32))
    return st.fixed_dictionaries({"seconds": seconds, "nanos": nanos})


def message_values(desc: descriptor.Descriptor, depth: int = 0) -> st.SearchStrategy[Any]:
    """A dict of field name to value (or a special form for well-known types)."""
    if desc.full_name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
        return _time_like(desc.full_name)
    if desc.full_name in (
        "google.protobuf.Struct",
        "google.protobuf.Value",
        "google.protobuf.ListValue",
    ):
        return st.just({})  # the server only writes these
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in desc.fields:
        value = _field_values(field, depth)
        if value is not None:
            fields[field.name] = value
    return st.fixed_dictionaries({}, optional=fields)


def _field_values(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any] | None:
    if field.message_type is not None:
        if depth >= _MAX_DEPTH:
            return None
        if field.message_type.GetOptions().map_entry:
            key = _scalar(field.message_type.fields_by_name["key"])
            value_field = field.message_type.fields_by_name["value"]
            value = (
                message_values(value_field.message_type, depth + 1)
                if value_field.message_type is not None
                else _scalar(value_field)
            )
            return st.dictionaries(key, value, max_size=3)
        one = message_values(field.message_type, depth + 1)
    else:
        one = _scalar(field)
    if field.is_repeated:
        return st.lists(one, max_size=4)
    return one


def _fill(message: Any, values: dict[str, Any]) -> None:
    """Set ``values`` on ``message``; a value protobuf itself refuses is left out."""
    for name, value in values.items():
        field = message.DESCRIPTOR.fields_by_name[name]
        try:
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                target = getattr(message, name)
                for key, item in value.items():
                    if isinstance(item, dict):
                        _fill(target[key], item)
                    else:
                        target[key] = item
            elif field.message_type is not None:
                items = value if field.is_repeated else [value]
                for item in items:
                    sub = (
                        getattr(message, name).add()
                        if field.is_repeated
                        else getattr(message, name)
                    )
                    sub.SetInParent()
                    _fill(sub, item)
            elif field.is_repeated:
                getattr(message, name).extend(value)
            else:
                setattr(message, name, value)
        except (ValueError, TypeError):  # e.g. a surrogate in a string: not encodable
            message.ClearField(name)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _invalid_utf8(desc: descriptor.Descriptor) -> st.SearchStrategy[bytes] | None:
    """A top-level string field of ``desc`` holding bytes that are not UTF-8."""
    strings = [f for f in desc.fields if f.type == FieldDescriptor.TYPE_STRING]
    if not strings:
        return None
    junk = st.sampled_from(
        [b"\xff", b"\xc3\x28", b"m\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"models/\x80"]
    )

    def splice(field: FieldDescriptor, raw: bytes) -> bytes:
        return _varint(field.number << 3 | 2) + _varint(len(raw)) + raw

    return st.builds(splice, st.sampled_from(strings), junk)


def _mutations(desc: descriptor.Descriptor, base: Message) -> st.SearchStrategy[bytes] | None:
    """``base`` with one or two of its fields replaced by hostile values."""
    fields = {f.name: value for f in desc.fields if (value := _field_values(f, 0)) is not None}
    if not fields:
        return None

    def mutate(values: dict[str, Any]) -> bytes:
        message = type(base)()
        message.CopyFrom(base)
        for name in values:
            message.ClearField(name)
        _fill(message, values)
        return bytes(message.SerializeToString())

    picks = st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=2, unique=True)
    return picks.flatmap(
        lambda names: st.builds(mutate, st.fixed_dictionaries({n: fields[n] for n in names}))
    )


def request_bytes(
    desc: descriptor.Descriptor, base: Message | None = None
) -> st.SearchStrategy[bytes]:
    """Wire bytes of a ``desc`` request: hostile values, invalid UTF-8, random bytes, or
    ``base`` (a valid request) with hostile values in one or two fields."""
    cls = message_factory.GetMessageClass(desc)

    def encode(values: dict[str, Any]) -> bytes:
        message = cls()
        _fill(message, values)
        return bytes(message.SerializeToString())

    structured = st.builds(encode, message_values(desc))
    shapes = [structured, structured, st.binary(max_size=200)]
    mutated = _mutations(desc, base) if base is not None else None
    if mutated is not None:
        shapes += [mutated, mutated]
    invalid = _invalid_utf8(desc)
    if invalid is not None:
        shapes.append(st.builds(lambda head, tail: head + tail, structured, invalid))
    return st.one_of(shapes)
