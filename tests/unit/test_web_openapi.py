"""Unit tests of the OpenAPI document generated from the annotated routes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from openapi_spec_validator import validate

from modelregistry.access.v1 import access_service_pb2
from modelregistry.artifact.v1 import artifact_service_pb2
from modelregistry.metadata.v1 import metadata_service_pb2
from modelregistry_server.web.openapi import openapi_document
from modelregistry_server.web.transcoding import routes_of
from tests.unit.web_shape_service import shape_service

SERVICES = (
    metadata_service_pb2.DESCRIPTOR.services_by_name["MetadataService"],
    access_service_pb2.DESCRIPTOR.services_by_name["AccessService"],
    artifact_service_pb2.DESCRIPTOR.services_by_name["ArtifactService"],
)
DOCUMENT = openapi_document(routes_of(SERVICES))


def _annotated() -> list[MethodDescriptor]:
    return [
        method
        for service in SERVICES
        for method in service.methods
        if method.GetOptions().HasExtension(annotations_pb2.http)
    ]


def _operations() -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId → (path, verb, operation)."""
    found = {}
    for path, item in DOCUMENT["paths"].items():
        for verb, operation in item.items():
            assert operation["operationId"] not in found, operation["operationId"]
            found[operation["operationId"]] = (path, verb, operation)
    return found


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = DOCUMENT["components"]["schemas"][name]
    return schema


def test_the_document_of_all_three_services_validates_as_openapi_3_1() -> None:
    assert DOCUMENT["openapi"] == "3.1.0"
    validate(DOCUMENT)  # raises on any violation


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_the_document_of_each_service_alone_validates(service: Any) -> None:
    validate(openapi_document(routes_of([service])))


def test_every_annotated_rpc_is_an_operation_with_its_verb() -> None:
    operations = _operations()
    for method in _annotated():
        rule = method.GetOptions().Extensions[annotations_pb2.http]
        verb = rule.WhichOneof("pattern")
        assert method.name in operations, f"{method.full_name} is missing"
        _, documented_verb, operation = operations[method.name]
        assert documented_verb == verb, method.full_name
        assert operation["tags"] == [method.containing_service.name]
    assert len(operations) == len(_annotated())
    # Read and Write are the file URL and the upload stream, not JSON methods.
    assert "Read" not in operations
    assert "Write" not in operations


def test_resources_of_different_kinds_get_paths_of_their_own() -> None:
    # `/v1/{name}` for models, versions and blobs alike would make one path of them all.
    operations = _operations()
    assert operations["GetModel"][:2] == ("/v1/models/{model}", "get")
    assert operations["GetModelVersion"][:2] == ("/v1/models/{model}/versions/{version}", "get")
    assert operations["DeleteAlias"][:2] == ("/v1/models/{model}/aliases/{alias}", "delete")
    assert operations["UpdateModel"][:2] == ("/v1/models/{model}", "patch")
    assert operations["CommitModelVersion"][0] == "/v1/models/{model}/versions/{version}:commit"
    assert operations["GetBlob"][0] == "/v1/blobs/{blob}"
    assert operations["DeleteProtectionRule"][0] == "/v1/protectionRules/{protectionRule}"


def test_every_path_template_parameter_is_declared_once() -> None:
    for path, item in DOCUMENT["paths"].items():
        in_template = re.findall(r"\{([^}]+)\}", path)
        assert len(set(in_template)) == len(in_template), path
        for operation in item.values():
            declared = [p["name"] for p in operation["parameters"] if p["in"] == "path"]
            assert sorted(declared) == sorted(in_template), (path, operation["operationId"])


def test_query_parameters_are_the_fields_that_path_and_body_leave() -> None:
    operations = _operations()
    list_versions = operations["ListModelVersions"][2]
    assert {p["name"] for p in list_versions["parameters"] if p["in"] == "query"} == {
        "page_size",
        "page_token",
        "filter",
        "order_by",
        "show_deleted",
    }
    update = operations["UpdateModel"][2]
    assert [p["name"] for p in update["parameters"] if p["in"] == "query"] == [
        "update_mask",
        "request_id",
    ]
    set_alias = operations["SetAlias"][2]
    assert [p["name"] for p in set_alias["parameters"] if p["in"] == "query"] == []


def test_request_bodies_are_the_annotated_body() -> None:
    operations = _operations()
    create = operations["CreateModel"][2]["requestBody"]["content"]["application/json"]
    assert create["schema"] == {"$ref": "#/components/schemas/modelregistry.metadata.v1.Model"}
    set_alias = operations["SetAlias"][2]["requestBody"]["content"]["application/json"]
    assert set_alias["schema"]["$ref"].endswith("modelregistry.metadata.v1.SetAliasRequest")
    assert "requestBody" not in operations["ListModels"][2]


def test_errors_are_google_rpc_status_and_the_watch_is_an_event_stream() -> None:
    operations = _operations()
    for _, _, operation in operations.values():
        default = operation["responses"]["default"]["content"]["application/json"]
        assert default["schema"] == {"$ref": "#/components/schemas/google.rpc.Status"}
    status = _schema("google.rpc.Status")
    assert set(status["properties"]) == {"code", "message", "details"}
    watch = operations["WatchModelEvents"][2]["responses"]["200"]
    assert list(watch["content"]) == ["text/event-stream"]


def test_properties_use_json_names_and_64_bit_integers_are_strings() -> None:
    version = _schema("modelregistry.metadata.v1.ModelVersion")
    assert "createTime" in version["properties"]
    assert "create_time" not in version["properties"]
    assert version["properties"]["createTime"] == {"type": "string", "format": "date-time"}
    checked = 0
    for message in _messages():
        for field in message.fields:
            if field.type not in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64):
                continue
            schema = _schema(message.full_name)["properties"][field.json_name]
            if field.is_repeated:
                schema = schema["items"]
            assert schema["type"] == "string", field.full_name
            assert schema["format"] in ("int64", "uint64"), field.full_name
            checked += 1
    assert checked > 0  # sizes and versions are 64-bit


def test_enums_are_string_enums_of_their_value_names() -> None:
    checked = 0
    for message in _messages():
        for field in message.fields:
            if field.type != FieldDescriptor.TYPE_ENUM:
                continue
            schema = _schema(message.full_name)["properties"][field.json_name]
            if field.is_repeated:
                schema = schema["items"]
            assert field.enum_type is not None
            assert schema == {
                "type": "string",
                "enum": [value.name for value in field.enum_type.values],
            }, field.full_name
            checked += 1
    assert checked > 0
    state = _schema("modelregistry.metadata.v1.ModelVersion")["properties"]["state"]
    assert "MODEL_VERSION_STATE_READY" in state["enum"]


def test_maps_are_objects_and_every_reference_resolves() -> None:
    labels = _schema("modelregistry.metadata.v1.Model")["properties"]["labels"]
    assert labels == {"type": "object", "additionalProperties": {"type": "string"}}
    schemas = DOCUMENT["components"]["schemas"]
    for ref in re.findall(r"'\$ref': '#/components/schemas/([^']+)'", repr(DOCUMENT)):
        assert ref in schemas, ref


def test_the_bearer_scheme_is_declared_and_required() -> None:
    assert DOCUMENT["components"]["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer"}
    }
    for _, _, operation in _operations().values():
        assert operation["security"] == [{"bearer": []}]


def _messages() -> list[Descriptor]:
    """The registry's message types the document has a schema of."""
    pool = descriptor_pool.Default()
    return [
        pool.FindMessageTypeByName(name)
        for name, schema in DOCUMENT["components"]["schemas"].items()
        if name.startswith("modelregistry.") and "properties" in schema
    ]


def test_additional_bindings_double_stars_and_every_field_kind_validate() -> None:
    document = openapi_document(routes_of([shape_service()]))
    validate(document)
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert sorted(ids) == ["Create", "Create2", "Download", "Get", "Update", "Watch"]
    assert "/v1/files/{file}:download" in document["paths"]
    request = document["components"]["schemas"]["modelregistry.webtest.v1.ShapeRequest"]
    assert request["properties"]["i64"] == {"type": "string", "format": "int64"}
    assert request["properties"]["u64"] == {"type": "string", "format": "uint64"}
    assert request["properties"]["kinds"]["items"]["enum"] == [
        "KIND_UNSPECIFIED",
        "KIND_A",
        "KIND_B",
    ]
