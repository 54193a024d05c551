"""A small annotated service for the HTTP face's unit tests: its request message has a field
of every kind, and its routes use ``**``, a custom verb, a body field, ``body: "*"``, an
additional binding and server streaming, whatever the registry's own protos hold."""

from __future__ import annotations

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf import field_mask_pb2 as _field_mask  # noqa: F401 - its file, in the pool
from google.protobuf import timestamp_pb2 as _timestamp  # noqa: F401 - its file, in the pool
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.descriptor_pb2 import FieldDescriptorProto as F

PACKAGE = "modelregistry.webtest.v1"


def _field(
    message: descriptor_pb2.DescriptorProto,
    name: str,
    number: int,
    kind: int,
    type_name: str = "",
    repeated: bool = False,
) -> None:
    label = F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL
    added = message.field.add(name=name, number=number, type=kind, label=label)
    if type_name:  # set even to "", it would be present
        added.type_name = type_name


def shape_file(package: str = PACKAGE) -> descriptor_pb2.FileDescriptorProto:
    """``ShapeService``: one request message with a field of every kind, and routes that use
    ``**``, a custom verb, a body field, ``body: "*"`` and an additional binding."""
    file = descriptor_pb2.FileDescriptorProto(
        name=package.replace(".", "/") + "/shape_service.proto",
        package=package,
        syntax="proto3",
        dependency=[
            "google/api/annotations.proto",
            "google/protobuf/field_mask.proto",
            "google/protobuf/timestamp.proto",
        ],
    )
    kind = file.enum_type.add(name="Kind")
    for number, name in enumerate(("KIND_UNSPECIFIED", "KIND_A", "KIND_B")):
        kind.value.add(name=name, number=number)
    inner = file.message_type.add(name="Inner")
    _field(inner, "text", 1, F.TYPE_STRING)
    _field(inner, "count", 2, F.TYPE_INT32)
    request = file.message_type.add(name="ShapeRequest")
    entry = request.nested_type.add(name="LabelsEntry")
    entry.options.map_entry = True
    _field(entry, "key", 1, F.TYPE_STRING)
    _field(entry, "value", 2, F.TYPE_STRING)
    for number, (name, field_kind, type_name, repeated) in enumerate(
        [
            ("name", F.TYPE_STRING, "", False),
            ("i32", F.TYPE_INT32, "", False),
            ("i64", F.TYPE_INT64, "", False),
            ("u32", F.TYPE_UINT32, "", False),
            ("u64", F.TYPE_UINT64, "", False),
            ("flag", F.TYPE_BOOL, "", False),
            ("ratio", F.TYPE_DOUBLE, "", False),
            ("kind", F.TYPE_ENUM, f".{package}.Kind", False),
            ("tags", F.TYPE_STRING, "", True),
            ("numbers", F.TYPE_INT32, "", True),
            ("inner", F.TYPE_MESSAGE, f".{package}.Inner", False),
            ("when_time", F.TYPE_MESSAGE, ".google.protobuf.Timestamp", False),
            ("update_mask", F.TYPE_MESSAGE, ".google.protobuf.FieldMask", False),
            ("labels", F.TYPE_MESSAGE, f".{package}.ShapeRequest.LabelsEntry", True),
            ("inners", F.TYPE_MESSAGE, f".{package}.Inner", True),
            ("kinds", F.TYPE_ENUM, f".{package}.Kind", True),
        ],
        start=1,
    ):
        _field(request, name, number, field_kind, type_name, repeated)
    service = file.service.add(name="ShapeService")
    rules = {
        "Get": http_pb2.HttpRule(get="/v1/{name=shelves/*}"),
        "Download": http_pb2.HttpRule(get="/v1/{name=files/**}:download"),
        "Update": http_pb2.HttpRule(patch="/v1/{inner.text=shelves/*}", body="inner"),
        "Create": http_pb2.HttpRule(
            post="/v1/{name=shelves/*}:create",
            body="*",
            additional_bindings=[http_pb2.HttpRule(put="/v1/shelves", body="*")],
        ),
        "Watch": http_pb2.HttpRule(get="/v1/shapes:watch"),
    }
    for name, rule in rules.items():
        method = service.method.add(
            name=name,
            input_type=f".{package}.ShapeRequest",
            output_type=f".{package}.Inner",
            server_streaming=name == "Watch",
        )
        method.options.Extensions[annotations_pb2.http].CopyFrom(rule)
    service.method.add(  # not annotated: not served over HTTP
        name="Hidden", input_type=f".{package}.ShapeRequest", output_type=f".{package}.Inner"
    )
    return file


def shape_service(
    package: str = PACKAGE, get_rule: http_pb2.HttpRule | None = None
) -> ServiceDescriptor:
    """``ShapeService`` of ``shape_file(package)`` (its ``Get`` annotated with ``get_rule``
    when given), added to the default descriptor pool once: the imports of field_mask_pb2
    and timestamp_pb2 above put its dependencies there."""
    pool = descriptor_pool.Default()
    try:
        return pool.FindServiceByName(f"{package}.ShapeService")
    except KeyError:
        file = shape_file(package)
        if get_rule is not None:
            file.service[0].method[0].options.Extensions[annotations_pb2.http].CopyFrom(get_rule)
        pool.Add(file)
    return pool.FindServiceByName(f"{package}.ShapeService")
