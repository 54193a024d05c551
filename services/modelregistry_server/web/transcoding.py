"""HTTP/JSON routes generated from the ``google.api.http`` annotations of the protos (AIP-127).

Each annotated method of a served service becomes a ``Route``: an HTTP verb, a path template
compiled to a regular expression, and where the request message's fields come from (path
variables, the JSON body, the query string). Nothing here is written per method: a new RPC
with an annotation is served over HTTP as soon as its service is.

The rules follow ``google/api/http.proto``: ``*`` matches one path segment, ``**`` the rest of
the path; ``body: "*"`` maps the whole JSON body onto the request, ``body: "field"`` onto one
field; every field not bound by the path or the body may be given as a query parameter
(``?page_size=10&filter=...``; a nested field as ``a.b``; a repeated field by repeating it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor, json_format, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

_VARIABLE = re.compile(r"\{([a-z_][a-z0-9_.]*)(?:=([^}]*))?\}")
_ENCODED_SLASH = re.compile("%2F", re.IGNORECASE)
_VERBS = ("get", "put", "post", "delete", "patch")
# Query values are strings; these field types take a JSON number or boolean instead.
_INTEGER_TYPES = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_FIXED32,
}
_FLOAT_TYPES = {FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT}


class RequestShapeError(ValueError):
    """The HTTP request cannot be turned into the method's request message; says why."""


@dataclass(frozen=True)
class Route:
    """One HTTP binding of one RPC.

    Attributes:
        method: The RPC's descriptor.
        http_method: ``GET``, ``POST``, ``PATCH``, ``DELETE`` or ``PUT``.
        template: The path template as annotated, e.g. ``/v1/{name=models/*}``.
        pattern: ``template`` compiled; its groups are the path variables in order.
        variables: The field path each group of ``pattern`` sets, e.g. ``model.name``.
        body: ``""`` (no body), ``"*"`` (the whole request) or one top-level field's name.
    """

    method: descriptor.MethodDescriptor
    http_method: str
    template: str
    pattern: re.Pattern[str]
    variables: tuple[str, ...]
    body: str

    @property
    def rpc_path(self) -> str:
        """The gRPC method path, ``/package.Service/Method``."""
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def streaming(self) -> bool:
        """Whether the RPC streams its responses (served as Server-Sent Events)."""
        return bool(self.method.server_streaming)

    def match(self, http_method: str, raw_path: str) -> dict[str, str] | None:
        """The path variables if this route serves ``http_method raw_path``, else None."""
        if http_method != self.http_method:
            return None
        found = self.pattern.fullmatch(raw_path)
        if found is None:
            return None
        return {
            field: _decode(value)
            for field, value in zip(self.variables, found.groups(), strict=True)
        }

    def build_request(
        self, path_values: Mapping[str, str], query: Iterable[tuple[str, str]], body: bytes
    ) -> Message:
        """The request message from the path variables, the query string and the JSON body.

        Raises:
            RequestShapeError: The body is not JSON of the request, or a query parameter names
                no field or has a value of the wrong type.
        """
        request = message_factory.GetMessageClass(self.method.input_type)()
        if self.body:
            _merge_body(request, self.body, body)
        elif body.strip():
            raise RequestShapeError(f"{self.http_method} {self.template} takes no request body")
        query = list(query)
        if self.body == "*" and query:
            # Every field comes from the body; a query parameter would be silently lost.
            raise RequestShapeError(
                f"{self.http_method} {self.template} takes its fields in the JSON body, "
                f"not as query parameters ({query[0][0]!r})"
            )
        bound = set(path_values) | ({self.body} if self.body else set())
        _merge_query(request, query, bound)
        for field_path, value in path_values.items():
            _set_path(request, field_path, value)
        return request


def routes_of(services: Sequence[descriptor.ServiceDescriptor]) -> list[Route]:
    """Every annotated method of ``services``, with its additional bindings."""
    routes: list[Route] = []
    for service in services:
        for method in service.methods:
            options = method.GetOptions()
            if not options.HasExtension(annotations_pb2.http):
                continue
            rule = options.Extensions[annotations_pb2.http]
            for one in (rule, *rule.additional_bindings):
                routes.append(_route(method, one))
    return routes


def _route(method: descriptor.MethodDescriptor, rule: http_pb2.HttpRule) -> Route:
    kind = rule.WhichOneof("pattern")
    if kind not in _VERBS:
        raise ValueError(f"{method.full_name}: unsupported HTTP rule {kind!r}")
    template = str(getattr(rule, kind))
    regex, variables = _compile(template)
    return Route(method, kind.upper(), template, regex, variables, rule.body)


def _compile(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """``/v1/{name=models/*}:commit`` → ``/v1/(models/[^/]+):commit`` and ``("name",)``."""
    parts: list[str] = []
    variables: list[str] = []
    position = 0
    for found in _VARIABLE.finditer(template):
        parts.append(re.escape(template[position : found.start()]))
        variables.append(found.group(1))
        parts.append("(" + _segments_regex(found.group(2) or "*") + ")")
        position = found.end()
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts)), tuple(variables)


def _segments_regex(pattern: str) -> str:
    out = []
    for segment in pattern.split("/"):
        if segment == "**":
            out.append(r"[^:]+?")  # the rest of the path, up to a custom verb
        elif segment == "*":
            out.append(r"[^/:]+")
        else:
            out.append(re.escape(segment))
    return "/".join(out)


def _decode(value: str) -> str:
    """A matched variable, percent-decoded except ``%2F``, as ``google/api/http.proto`` says
    for variables of several segments (resource names, as every variable here is): an
    encoded ``/`` stays inside its segment, so ``models/a%2Fversions%2F1`` cannot turn into
    another resource's name."""
    return "%2F".join(unquote(part) for part in _ENCODED_SLASH.split(value))


def _merge_body(request: Message, body_field: str, body: bytes) -> None:
    try:
        document = json.loads(body or b"{}")
    except ValueError as exc:
        raise RequestShapeError(f"the request body is not JSON: {exc}") from None
    except RecursionError:
        raise RequestShapeError("the request body is nested too deeply") from None
    target = request if body_field == "*" else getattr(request, body_field)
    if not isinstance(document, dict):
        # Every body here is a message, whose JSON form is an object; ParseDict would fail
        # on anything else with a TypeError instead of saying so.
        raise RequestShapeError("the request body must be a JSON object")
    try:
        json_format.ParseDict(document, target)
    except json_format.ParseError as exc:
        raise RequestShapeError(f"the request body does not fit the request: {exc}") from None
    except RecursionError:
        raise RequestShapeError("the request body is nested too deeply") from None


def _merge_query(request: Any, query: Iterable[tuple[str, str]], bound: set[str]) -> None:
    document: dict[str, Any] = {}
    for key, value in query:
        field, container, field_path = _query_field(request.DESCRIPTOR, key, document)
        # By the field's proto path, so that its JSON spelling (``modelVersion.description``)
        # cannot reach a field the body or the path sets either.
        if field_path in bound or any(field_path.startswith(b + ".") for b in bound):
            raise RequestShapeError(f"query parameter {key!r} is already set by the path or body")
        converted = _query_value(field, key, value)
        if field.is_repeated:
            container.setdefault(field.name, []).append(converted)
        elif field.name in container:
            raise RequestShapeError(f"query parameter {key!r} is given more than once")
        else:
            container[field.name] = converted
    try:
        json_format.ParseDict(document, request)
    except json_format.ParseError as exc:
        raise RequestShapeError(f"a query parameter has a value of the wrong type: {exc}") from None


def _query_field(
    message: descriptor.Descriptor, key: str, document: dict[str, Any]
) -> tuple[FieldDescriptor, dict[str, Any], str]:
    """The field ``key`` (``a.b`` for nested ones; proto or JSON names) names, the dict of
    ``document`` that holds it, and its path in proto names."""
    names = key.split(".")
    container = document
    proto_names: list[str] = []
    for depth, name in enumerate(names):
        field = message.fields_by_name.get(name) or _by_json_name(message, name)
        if field is None:
            raise RequestShapeError(f"unknown query parameter {key!r}")
        proto_names.append(field.name)
        if depth == len(names) - 1:
            if field.type == FieldDescriptor.TYPE_MESSAGE and not _is_scalar_wrapper(field):
                raise RequestShapeError(f"query parameter {key!r} names a message, not a value")
            return field, container, ".".join(proto_names)
        if field.type != FieldDescriptor.TYPE_MESSAGE or (field.is_repeated):
            raise RequestShapeError(f"unknown query parameter {key!r}")
        container = container.setdefault(field.name, {})
        message = message_of(field)
    raise RequestShapeError(f"unknown query parameter {key!r}")  # pragma: no cover


def _by_json_name(message: descriptor.Descriptor, name: str) -> FieldDescriptor | None:
    for field in message.fields:
        if field.json_name == name:
            return field
    return None


def _is_scalar_wrapper(field: FieldDescriptor) -> bool:
    # Timestamps, durations and field masks have a string JSON form, so a query value fits.
    return message_of(field).full_name in (
        "google.protobuf.Timestamp",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
    )


def _query_value(field: FieldDescriptor, key: str, value: str) -> Any:
    if field.type == FieldDescriptor.TYPE_BOOL:
        if value not in ("true", "false"):
            raise RequestShapeError(f"query parameter {key!r} must be true or false")
        return value == "true"
    if field.type in _INTEGER_TYPES:
        try:
            return int(value)
        except ValueError:
            raise RequestShapeError(f"query parameter {key!r} must be a whole number") from None
    if field.type in _FLOAT_TYPES:
        try:
            return float(value)
        except ValueError:
            raise RequestShapeError(f"query parameter {key!r} must be a number") from None
    return value  # strings, 64-bit integers, enums by name and timestamps parse from strings


def message_of(field: FieldDescriptor) -> descriptor.Descriptor:
    """The message type of a message field."""
    assert field.message_type is not None, field.full_name
    return field.message_type


def _set_path(request: Message, field_path: str, value: str) -> None:
    *parents, last = field_path.split(".")
    target = request
    for name in parents:
        target = getattr(target, name)
    setattr(target, last, value)
