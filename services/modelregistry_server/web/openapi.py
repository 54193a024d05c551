"""The OpenAPI 3.1 document of the JSON API, generated from the same routes it serves.

Schemas follow the proto JSON mapping: lowerCamelCase property names, 64-bit integers as
strings, enums as their value names, ``Timestamp`` as an RFC 3339 string, ``Duration`` as
``"1.5s"``, maps as objects. It is built once at start-up from the descriptors, so it can not
drift from what the server accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf import descriptor
from google.protobuf.descriptor import FieldDescriptor

from modelregistry_server.web.transcoding import Route, message_of

_STATUS_REF = {"$ref": "#/components/schemas/google.rpc.Status"}
_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_DOUBLE: {"type": "number"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int32", "minimum": 0},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "int32", "minimum": 0},
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SINT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
}
# Well-known types have a JSON form of their own.
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {"type": "string", "description": "Comma-separated paths."},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "additionalProperties": True,
    },
}


def openapi_document(routes: Sequence[Route], title: str = "modelregistry") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``."""
    schemas: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    bindings: dict[str, int] = {}
    for route in routes:
        path, parameters = _openapi_path(route)
        # An operationId is unique in a document; an additional binding gets a number.
        bindings[route.method.name] = bindings.get(route.method.name, 0) + 1
        number = bindings[route.method.name]
        operation: dict[str, Any] = {
            "operationId": route.method.name + (str(number) if number > 1 else ""),
            "tags": [route.method.containing_service.name],
            "summary": f"{route.method.containing_service.name}.{route.method.name}",
            "parameters": parameters + _query_parameters(route, schemas),
            "responses": {
                "200": _success(route, schemas),
                "default": {
                    "description": "An error: google.rpc.Status with an ErrorInfo detail.",
                    "content": {"application/json": {"schema": _STATUS_REF}},
                },
            },
            "security": [{"bearer": []}],
        }
        if route.body:
            body_type = (
                route.method.input_type
                if route.body == "*"
                else message_of(route.method.input_type.fields_by_name[route.body])
            )
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _ref(body_type, schemas)}},
            }
        paths.setdefault(path, {})[route.http_method.lower()] = operation
    _message_schema_named("google.rpc.Status", schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": "v1",
            "description": "The modelregistry JSON API, transcoded from its gRPC services "
            "(google.api.http annotations). Send `Authorization: Bearer <token>`.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _openapi_path(route: Route) -> tuple[str, list[dict[str, Any]]]:
    """``/v1/{name=models/*/versions/*}`` → ``/v1/models/{model}/versions/{version}`` and
    its path parameters.

    OpenAPI path parameters cannot hold ``/``, while ``name`` holds ``models/x/versions/1``;
    and ``/v1/{name}`` for every ``name`` would make the routes of models, versions and
    blobs one path, each overwriting the other. So each ``*`` of a variable's pattern becomes
    a parameter named after the collection before it, as in the resource name itself.
    """
    path = route.template
    parameters: list[dict[str, Any]] = []
    taken: set[str] = set()
    for field_path in route.variables:
        start = path.index("{" + field_path)
        end = path.index("}", start)
        _, _, pattern = path[start + 1 : end].partition("=")
        segments = (pattern or "*").split("/")
        expanded = []
        for position, segment in enumerate(segments):
            if segment not in ("*", "**"):
                expanded.append(segment)
                continue
            before = segments[position - 1] if position else ""
            name = _parameter_name(field_path, before, taken)
            expanded.append("{" + name + "}")
            parameters.append(_path_parameter(name, field_path, pattern or "*", segment))
        path = path[:start] + "/".join(expanded) + path[end + 1 :]
    return path, parameters


def _parameter_name(field_path: str, collection: str, taken: set[str]) -> str:
    """``models`` → ``model``, ``aliases`` → ``alias``; the field's name without one."""
    if collection and collection not in ("*", "**"):
        name = collection[:-2] if collection.endswith("ses") else collection.removesuffix("s")
    else:
        name = field_path.replace(".", "_")
    unique, count = name, 1
    while unique in taken:
        count += 1
        unique = f"{name}{count}"
    taken.add(unique)
    return unique


def _path_parameter(name: str, field_path: str, pattern: str, segment: str) -> dict[str, Any]:
    rest = " It may hold `/` (the rest of the path)." if segment == "**" else ""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": f"A segment of the request's `{field_path}` (`{pattern}`).{rest}",
        "schema": {"type": "string"},
    }


def _query_parameters(route: Route, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    if route.body == "*":
        return []
    bound = set(route.variables) | {route.body}
    out = []
    for field in route.method.input_type.fields:
        if field.name in bound or any(v.startswith(field.name + ".") for v in route.variables):
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE and (
            message_of(field).full_name not in _WELL_KNOWN or _is_map(field)
        ):
            continue
        schema = _field_schema(field, schemas)
        out.append({"name": field.name, "in": "query", "required": False, "schema": schema})
    return out


def _success(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    if route.streaming:
        return {
            "description": "Server-Sent Events: each `data:` line is one "
            f"{route.method.output_type.full_name} in JSON; `id:` is its event id.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    return {
        "description": route.method.output_type.full_name,
        "content": {"application/json": {"schema": _ref(route.method.output_type, schemas)}},
    }


def _ref(message: descriptor.Descriptor, schemas: dict[str, Any]) -> dict[str, Any]:
    _message_schema_named(message.full_name, schemas, message)
    return {"$ref": f"#/components/schemas/{message.full_name}"}


def _message_schema_named(
    name: str, schemas: dict[str, Any], message: descriptor.Descriptor | None = None
) -> None:
    if name in schemas:
        return
    if message is None:
        from google.rpc import status_pb2

        message = status_pb2.Status.DESCRIPTOR
    if name in _WELL_KNOWN:
        schemas[name] = dict(_WELL_KNOWN[name])
        return
    schemas[name] = {}  # placed first: a message may refer to itself
    properties = {field.json_name: _field_schema(field, schemas) for field in message.fields}
    schemas[name] = {"type": "object", "properties": properties}


def _is_map(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE and message_of(field).GetOptions().map_entry


def _field_schema(field: FieldDescriptor, schemas: dict[str, Any]) -> dict[str, Any]:
    if _is_map(field):
        value = message_of(field).fields_by_name["value"]
        return {"type": "object", "additionalProperties": _single_schema(value, schemas)}
    single = _single_schema(field, schemas)
    if field.is_repeated:
        return {"type": "array", "items": single}
    return single


def _single_schema(field: FieldDescriptor, schemas: dict[str, Any]) -> dict[str, Any]:
    if field.type == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        return {"type": "string", "enum": [value.name for value in field.enum_type.values]}
    if field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
        message = message_of(field)
        if message.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[message.full_name])
        return _ref(message, schemas)
    return dict(_SCALARS[field.type])
