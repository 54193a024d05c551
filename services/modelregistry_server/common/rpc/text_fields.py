"""Control characters in a request's text: refused once, for every field of every RPC.

A NUL or an escape sequence stored in a label or a name comes back out of every listing, into
logs, terminals and web pages, so no string field of a request may hold a control character
(Unicode category ``Cc``: C0, DEL and C1). Free text that is naturally multi-line (``description``
and ``filter``) may hold a tab, a line feed or a carriage return, nothing else.

Fields whose own rules already refuse control characters with a more specific reason are left
to those rules, so the reason a client gets does not depend on which check ran first:
manifest paths (``MANIFEST_INVALID``) and version references (``REFERENCE_INVALID``).
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from modelregistry_server.common.kernel.errors import InvalidArgument

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_MULTI_LINE_FIELDS = frozenset({"description", "filter"})
_OWN_RULES = frozenset(
    {
        "modelregistry.metadata.v1.ManifestFile.path",
        "modelregistry.metadata.v1.ResolveModelVersionRequest.ref",
    }
)
_STRING = FieldDescriptor.TYPE_STRING
_MESSAGE = FieldDescriptor.TYPE_MESSAGE


def control_character_error(request: Message) -> InvalidArgument | None:
    """The error for the first control character in ``request``'s text, or None."""
    return _check(request, "")


def _check(message: Message, prefix: str) -> InvalidArgument | None:
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.type == _STRING:
            values = value if _is_repeated(field) else (value,)
            for i, text in enumerate(values):
                where = f"{path}[{i}]" if _is_repeated(field) else path
                error = _text_error(field, text, where)
                if error is not None:
                    return error
        elif field.type == _MESSAGE:
            error = _check_messages(field, value, path)
            if error is not None:
                return error
    return None


def _check_messages(field: FieldDescriptor, value: Any, path: str) -> InvalidArgument | None:
    entry = field.message_type
    assert entry is not None  # a message field always has its type
    if entry.GetOptions().map_entry:
        key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
        for key in value:
            if isinstance(key, str):
                error = _text_error(key_field, key, f"{path} key")
                if error is not None:
                    return error
            item = value[key]
            where = f"{path}[{key!r:.40}]"
            if value_field.type == _STRING:
                error = _text_error(value_field, item, where)
            elif value_field.type == _MESSAGE:
                error = _check(item, f"{where}.")
            else:
                error = None
            if error is not None:
                return error
        return None
    if _is_repeated(field):
        for i, item in enumerate(value):
            error = _check(item, f"{path}[{i}].")
            if error is not None:
                return error
        return None
    assert isinstance(value, Message)
    return _check(value, f"{path}.")


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _text_error(field: FieldDescriptor, text: str, where: str) -> InvalidArgument | None:
    if field.full_name in _OWN_RULES:
        return None
    pattern = _CONTROL_BUT_LINES if field.name in _MULTI_LINE_FIELDS else _CONTROL
    found = pattern.search(text)
    if found is None:
        return None
    allowed = " (tab and line breaks are allowed)" if pattern is _CONTROL_BUT_LINES else ""
    return InvalidArgument(
        where,
        f"contains a control character (U+{ord(found.group()):04X}) at position "
        f"{found.start()}; text fields may not hold control characters{allowed}",
    )
