"""Unit tests of the HTTP routes generated from ``google.api.http`` annotations: of the
registry's own services (what is served), and of ``web_shape_service`` (every field kind,
``**`` with a custom verb, additional bindings)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from google.api import http_pb2
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message

from modelregistry.access.v1 import access_service_pb2
from modelregistry.artifact.v1 import artifact_service_pb2
from modelregistry.metadata.v1 import metadata_service_pb2, model_version_pb2
from modelregistry_server.web.transcoding import RequestShapeError, Route, routes_of
from tests.unit.web_shape_service import PACKAGE, shape_service

_REGISTRY_SERVICES = (
    metadata_service_pb2.DESCRIPTOR.services_by_name["MetadataService"],
    access_service_pb2.DESCRIPTOR.services_by_name["AccessService"],
    artifact_service_pb2.DESCRIPTOR.services_by_name["ArtifactService"],
)
SHAPE_ROUTES = routes_of([shape_service()])
REGISTRY_ROUTES = routes_of(_REGISTRY_SERVICES)


def _route(routes: Sequence[Route], http_method: str, template: str) -> Route:
    for route in routes:
        if (route.http_method, route.template) == (http_method, template):
            return route
    raise AssertionError(f"no route {http_method} {template}")


def _served_by(routes: Sequence[Route], http_method: str, path: str) -> tuple[str, dict[str, str]]:
    for route in routes:
        values = route.match(http_method, path)
        if values is not None:
            return route.method.name, values
    raise AssertionError(f"nothing serves {http_method} {path}")


def _shape(query: list[tuple[str, str]], template: str = "/v1/shapes:watch") -> Message:
    route = _route(SHAPE_ROUTES, "GET", template)
    return route.build_request({}, query, b"")


# ------------------------------------------------------------------ compiling and matching


def test_every_annotated_method_and_additional_binding_becomes_a_route() -> None:
    assert [(r.method.name, r.http_method, r.template, r.body) for r in SHAPE_ROUTES] == [
        ("Get", "GET", "/v1/{name=shelves/*}", ""),
        ("Download", "GET", "/v1/{name=files/**}:download", ""),
        ("Update", "PATCH", "/v1/{inner.text=shelves/*}", "inner"),
        ("Create", "POST", "/v1/{name=shelves/*}:create", "*"),
        ("Create", "PUT", "/v1/shelves", "*"),
        ("Watch", "GET", "/v1/shapes:watch", ""),
    ]
    watch = _route(SHAPE_ROUTES, "GET", "/v1/shapes:watch")
    assert watch.streaming
    assert watch.rpc_path == f"/{PACKAGE}.ShapeService/Watch"
    assert not _route(SHAPE_ROUTES, "GET", "/v1/{name=shelves/*}").streaming


def test_a_single_star_matches_exactly_one_segment() -> None:
    get = _route(SHAPE_ROUTES, "GET", "/v1/{name=shelves/*}")
    assert get.match("GET", "/v1/shelves/s1") == {"name": "shelves/s1"}
    assert get.match("GET", "/v1/shelves/s1/books") is None
    assert get.match("GET", "/v1/shelves/") is None
    assert get.match("GET", "/v1/shelves") is None
    assert get.match("GET", "/v1/shelves/s1:create") is None  # a custom verb is not a segment
    assert get.match("POST", "/v1/shelves/s1") is None  # the verb must match too


def test_a_double_star_takes_the_rest_of_the_path_up_to_the_custom_verb() -> None:
    download = _route(SHAPE_ROUTES, "GET", "/v1/{name=files/**}:download")
    assert download.match("GET", "/v1/files/a:download") == {"name": "files/a"}
    assert download.match("GET", "/v1/files/a/b/c.bin:download") == {"name": "files/a/b/c.bin"}
    assert download.match("GET", "/v1/files/a/b") is None  # no verb
    assert download.match("GET", "/v1/files:download") is None  # ** needs a segment
    assert download.match("GET", "/v1/files/a:upload") is None


def test_the_registry_routes_include_a_double_star_and_custom_verbs() -> None:
    assert _served_by(REGISTRY_ROUTES, "DELETE", "/v1/protectionRules/fraud/production") == (
        "DeleteProtectionRule",
        {"name": "protectionRules/fraud/production"},
    )
    assert _served_by(REGISTRY_ROUTES, "POST", "/v1/models/m/versions/3:commit") == (
        "CommitModelVersion",
        {"name": "models/m/versions/3"},
    )
    assert _served_by(REGISTRY_ROUTES, "GET", "/v1/versions:resolve") == (
        "ResolveModelVersion",
        {},
    )
    assert _served_by(REGISTRY_ROUTES, "GET", "/v1/models/m/versions/3") == (
        "GetModelVersion",
        {"name": "models/m/versions/3"},
    )
    assert _served_by(REGISTRY_ROUTES, "GET", "/v1/models/m") == ("GetModel", {"name": "models/m"})
    assert _served_by(REGISTRY_ROUTES, "PATCH", "/v1/models/m") == (
        "UpdateModel",
        {"model.name": "models/m"},
    )


def test_path_values_are_percent_decoded_but_an_encoded_slash_stays_in_its_segment() -> None:
    get = _route(SHAPE_ROUTES, "GET", "/v1/{name=shelves/*}")
    assert get.match("GET", "/v1/shelves/caf%C3%A9%20au%20lait") == {"name": "shelves/café au lait"}
    # An encoded "/" must not make a name of more segments (another resource's name).
    assert get.match("GET", "/v1/shelves/a%2Fbooks%2f1") == {"name": "shelves/a%2Fbooks%2F1"}


def test_template_literals_are_not_regular_expressions() -> None:
    watch = _route(SHAPE_ROUTES, "GET", "/v1/shapes:watch")
    assert watch.match("GET", "/v1/shapesXwatch") is None
    assert watch.match("GET", "/v1/shapes:watch/more") is None


def test_an_unknown_http_rule_kind_is_refused() -> None:
    rule = http_pb2.HttpRule(custom=http_pb2.CustomHttpPattern(kind="HEAD", path="/v1/shelves"))
    service = shape_service("modelregistry.webtest.custom.v1", rule)
    with pytest.raises(ValueError, match="unsupported HTTP rule 'custom'"):
        routes_of([service])


# ------------------------------------------------------------------ query parameters


def test_query_parameters_of_every_scalar_kind_are_converted() -> None:
    request = _shape(
        [
            ("name", "shelves/s1"),
            ("i32", "-7"),
            ("i64", "9007199254740993"),  # beyond a double's exact integers
            ("u32", "4000000000"),
            ("u64", "18446744073709551615"),
            ("flag", "true"),
            ("ratio", "0.25"),
            ("kind", "KIND_B"),
            ("when_time", "2026-01-02T03:04:05Z"),
            ("update_mask", "name,inner.text"),
        ]
    )
    assert request.name == "shelves/s1"  # type: ignore[attr-defined]
    assert request.i32 == -7  # type: ignore[attr-defined]
    assert request.i64 == 9007199254740993  # type: ignore[attr-defined]
    assert request.u32 == 4000000000  # type: ignore[attr-defined]
    assert request.u64 == 18446744073709551615  # type: ignore[attr-defined]
    assert request.flag is True  # type: ignore[attr-defined]
    assert request.ratio == 0.25  # type: ignore[attr-defined]
    assert request.kind == 2  # type: ignore[attr-defined]
    assert request.when_time.seconds == 1767323045  # type: ignore[attr-defined]
    assert list(request.update_mask.paths) == ["name", "inner.text"]  # type: ignore[attr-defined]


def test_json_names_are_accepted_as_well_as_proto_names() -> None:
    request = _shape([("whenTime", "2026-01-02T03:04:05Z"), ("updateMask", "name")])
    assert request.when_time.seconds == 1767323045  # type: ignore[attr-defined]
    assert list(request.update_mask.paths) == ["name"]  # type: ignore[attr-defined]


def test_false_is_a_value_and_an_enum_is_given_by_name() -> None:
    request = _shape([("flag", "false"), ("kind", "KIND_A")])
    assert request.flag is False  # type: ignore[attr-defined]
    assert request.kind == 1  # type: ignore[attr-defined]


def test_a_repeated_field_is_given_by_repeating_its_parameter() -> None:
    request = _shape(
        [
            ("tags", "a"),
            ("numbers", "3"),
            ("tags", "b"),
            ("numbers", "1"),
            ("kinds", "KIND_B"),
            ("kinds", "KIND_A"),
        ]
    )
    assert list(request.tags) == ["a", "b"]  # type: ignore[attr-defined]
    assert list(request.numbers) == [3, 1]  # type: ignore[attr-defined]
    assert list(request.kinds) == [2, 1]  # type: ignore[attr-defined]


def test_a_nested_field_is_named_with_dots() -> None:
    request = _shape([("inner.text", "hello"), ("inner.count", "4")])
    assert (request.inner.text, request.inner.count) == ("hello", 4)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("colour", "red", "unknown query parameter 'colour'"),
        ("inner.colour", "red", "unknown query parameter 'inner.colour'"),
        ("name.more", "x", "unknown query parameter 'name.more'"),
        ("inners.text", "x", "unknown query parameter 'inners.text'"),  # repeated message
        ("inner", "x", "names a message, not a value"),
        ("labels", "x", "names a message, not a value"),  # a map is not a query value
        ("i32", "1.5", "'i32' must be a whole number"),
        ("i32", "", "'i32' must be a whole number"),
        ("u32", "-1", "wrong type"),
        ("i32", "2147483648", "wrong type"),  # out of range
        ("i64", "12abc", "wrong type"),
        ("ratio", "half", "'ratio' must be a number"),
        ("flag", "yes", "'flag' must be true or false"),
        ("flag", "True", "'flag' must be true or false"),
        ("kind", "KIND_C", "wrong type"),
        ("when_time", "yesterday", "wrong type"),
        ("numbers", "x", "'numbers' must be a whole number"),
    ],
)
def test_a_bad_query_parameter_is_refused_with_its_name(key: str, value: str, says: str) -> None:
    with pytest.raises(RequestShapeError, match=says.replace("(", r"\(")):
        _shape([(key, value)])


def test_a_single_field_given_twice_is_refused_not_silently_overwritten() -> None:
    with pytest.raises(RequestShapeError, match="'i32' is given more than once"):
        _shape([("i32", "1"), ("i32", "2")])
    with pytest.raises(RequestShapeError, match="given more than once"):
        _shape([("when_time", "2026-01-02T03:04:05Z"), ("whenTime", "2026-01-02T03:04:05Z")])


def test_registry_list_parameters_fill_the_request() -> None:
    route = _route(REGISTRY_ROUTES, "GET", "/v1/{parent=models/*}/versions")
    values = route.match("GET", "/v1/models/fraud/versions")
    assert values is not None
    request = route.build_request(
        values,
        [
            ("filter", 'state = "READY"'),
            ("orderBy", "version asc"),
            ("page_size", "2"),
            ("pageToken", "abc"),
            ("show_deleted", "true"),
        ],
        b"",
    )
    assert request == metadata_service_pb2.ListModelVersionsRequest(
        parent="models/fraud",
        filter='state = "READY"',
        order_by="version asc",
        page_size=2,
        page_token="abc",
        show_deleted=True,
    )


# ------------------------------------------------------------------ path, body and query together


@pytest.mark.parametrize("key", ["parent", "pageSize.x"])
def test_a_query_parameter_cannot_set_the_path_variable(key: str) -> None:
    route = _route(REGISTRY_ROUTES, "GET", "/v1/{parent=models/*}/versions")
    expected = "already set by the path" if key == "parent" else "unknown query parameter"
    with pytest.raises(RequestShapeError, match=expected):
        route.build_request({"parent": "models/a"}, [(key, "models/b")], b"")


@pytest.mark.parametrize("key", ["upload_session", "uploadSession"])
def test_the_json_name_of_a_path_variable_is_refused_too(key: str) -> None:
    route = _route(REGISTRY_ROUTES, "GET", "/v1/{upload_session=uploadSessions/*}:status")
    with pytest.raises(RequestShapeError, match=f"'{key}' is already set by the path or body"):
        route.build_request({"upload_session": "uploadSessions/a"}, [(key, "x")], b"")


@pytest.mark.parametrize(
    "key", ["model_version", "model_version.description", "modelVersion.description"]
)
def test_a_query_parameter_cannot_set_a_field_of_the_body(key: str) -> None:
    route = _route(REGISTRY_ROUTES, "PATCH", "/v1/{model_version.name=models/*/versions/*}")
    expected = "names a message" if key == "model_version" else "already set by the path or body"
    with pytest.raises(RequestShapeError, match=expected):
        route.build_request(
            {"model_version.name": "models/m/versions/1"},
            [(key, "from the query")],
            b'{"description": "from the body"}',
        )


def test_a_body_field_takes_the_body_and_the_rest_comes_from_the_query() -> None:
    route = _route(REGISTRY_ROUTES, "PATCH", "/v1/{model_version.name=models/*/versions/*}")
    values = route.match("PATCH", "/v1/models/m/versions/1")
    assert values is not None
    request = route.build_request(
        values,
        [("updateMask", "description,labels")],
        b'{"description": "d", "labels": {"a": "b"}}',
    )
    assert request == metadata_service_pb2.UpdateModelVersionRequest(
        model_version=model_version_pb2.ModelVersion(
            name="models/m/versions/1", description="d", labels={"a": "b"}
        ),
        update_mask=field_mask_pb2.FieldMask(paths=["description", "labels"]),
    )


def test_a_star_body_is_the_whole_request_and_takes_no_query_parameters() -> None:
    route = _route(REGISTRY_ROUTES, "POST", "/v1/{model=models/*}/aliases")
    request = route.build_request(
        {"model": "models/m"}, [], b'{"alias": "production", "version": "models/m/versions/2"}'
    )
    assert request == metadata_service_pb2.SetAliasRequest(
        model="models/m", alias="production", version="models/m/versions/2"
    )
    # Given as a query parameter, the alias would be lost: refused with the reason.
    with pytest.raises(RequestShapeError, match="in the JSON body, not as query parameters"):
        route.build_request({"model": "models/m"}, [("alias", "production")], b"{}")


def test_path_values_override_what_the_body_says() -> None:
    route = _route(REGISTRY_ROUTES, "POST", "/v1/{model=models/*}/aliases")
    request = route.build_request(
        {"model": "models/a"}, [], b'{"model": "models/b", "alias": "p", "version": "v"}'
    )
    assert request.model == "models/a"  # type: ignore[attr-defined]
    shape = _route(SHAPE_ROUTES, "PATCH", "/v1/{inner.text=shelves/*}")
    request = shape.build_request({"inner.text": "shelves/s1"}, [], b'{"text": "x", "count": 2}')
    assert (request.inner.text, request.inner.count) == ("shelves/s1", 2)  # type: ignore[attr-defined]


def test_an_additional_binding_builds_the_same_request() -> None:
    put = _route(SHAPE_ROUTES, "PUT", "/v1/shelves")
    request = put.build_request({}, [], b'{"name": "shelves/s2", "i64": "5"}')
    assert (request.name, request.i64) == ("shelves/s2", 5)  # type: ignore[attr-defined]


def test_an_empty_body_is_an_empty_message() -> None:
    route = _route(REGISTRY_ROUTES, "POST", "/v1/auditLog:verify")
    assert route.build_request({}, [], b"").ListFields() == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{", "the request body is not JSON"),
        (b"\xff", "the request body is not JSON"),
        (b"null", "must be a JSON object"),
        (b"[]", "must be a JSON object"),
        (b"7", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"alias": 5}', "does not fit the request"),
        (b'{"colour": "red"}', "does not fit the request"),
    ],
)
def test_a_body_that_is_not_the_request_in_json_is_refused(body: bytes, says: str) -> None:
    route = _route(REGISTRY_ROUTES, "POST", "/v1/{model=models/*}/aliases")
    with pytest.raises(RequestShapeError, match=says):
        route.build_request({"model": "models/m"}, [], body)


def test_a_body_field_that_is_not_an_object_is_refused() -> None:
    route = _route(REGISTRY_ROUTES, "POST", "/v1/models")
    with pytest.raises(RequestShapeError, match="must be a JSON object"):
        route.build_request({}, [("model_id", "m")], b'"a model"')


def test_a_method_without_a_body_refuses_one() -> None:
    route = _route(REGISTRY_ROUTES, "GET", "/v1/models")
    with pytest.raises(RequestShapeError, match="takes no request body"):
        route.build_request({}, [], b'{"page_size": 1}')
    # Whitespace alone is no body.
    assert route.build_request({}, [], b" \n") == metadata_service_pb2.ListModelsRequest()
