"""SDK conversions: typed params (bool is not int), names, request builders.

Reference parsing is tested against the server's parser in ``test_sdk_refs.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from modelregistry import _convert
from modelregistry.errors import InvalidArgumentError
from modelregistry.metadata.v1 import model_event_pb2, model_version_pb2


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (True, "bool_value"),
        (False, "bool_value"),
        (0, "int_value"),
        (-(2**63), "int_value"),
        (2**63 - 1, "int_value"),
        (0.5, "double_value"),
        (1.0, "double_value"),
        ("adam", "string_value"),
        ("", "string_value"),
    ],
)
def test_param_round_trips_with_its_own_type(value: str | int | float | bool, kind: str) -> None:
    proto = _convert.params_to_proto({"p": value})["p"]
    assert proto.WhichOneof("kind") == kind
    back = _convert.param_from_proto(proto)
    assert back == value
    assert type(back) is type(value)


def test_bool_is_never_sent_as_int() -> None:
    protos = _convert.params_to_proto({"flag": True, "count": 1})
    assert protos["flag"].WhichOneof("kind") == "bool_value"
    assert protos["count"].WhichOneof("kind") == "int_value"
    assert _convert.params_from_proto(protos) == {"flag": True, "count": 1}
    assert type(_convert.params_from_proto(protos)["flag"]) is bool


@pytest.mark.parametrize(
    "value", [2**63, -(2**63) - 1, float("nan"), float("inf"), None, [1], b"x", {"a": 1}]
)
def test_unsupported_or_unrepresentable_params_are_rejected(value: object) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        _convert.params_to_proto({"p": value})  # type: ignore[dict-item]
    assert info.value.reason == "FIELD_INVALID"
    assert info.value.metadata == {"field": "params.p"}


def test_none_params_is_empty() -> None:
    assert _convert.params_to_proto(None) == {}


def test_unset_param_value_reads_as_empty_string() -> None:
    assert _convert.param_from_proto(model_version_pb2.ParamValue()) == ""


def test_metrics_must_be_finite_numbers() -> None:
    assert _convert.metrics_to_proto({"acc": 1, "loss": 0.25}) == {"acc": 1.0, "loss": 0.25}
    for bad in (float("nan"), float("-inf"), "0.9", True):
        with pytest.raises(InvalidArgumentError):
            _convert.metrics_to_proto({"m": bad})  # type: ignore[dict-item]


def test_resource_names_accept_ids_and_full_names() -> None:
    assert _convert.model_name("resnet") == "models/resnet"
    assert _convert.model_name("models/resnet") == "models/resnet"
    assert _convert.model_id("models/resnet") == "resnet"
    assert _convert.version_name("models/resnet", 3) == "models/resnet/versions/3"
    assert _convert.alias_name("resnet", "production") == "models/resnet/aliases/production"
    with pytest.raises(InvalidArgumentError):
        _convert.version_name("resnet", True)
    with pytest.raises(InvalidArgumentError):
        _convert.version_name("resnet", "3")  # type: ignore[arg-type]


def test_every_mutating_request_gets_a_fresh_request_id() -> None:
    first = _convert.create_model_request("m", "", None)
    second = _convert.create_model_request("m", "", None)
    assert len(first.request_id) == 36
    assert first.request_id != second.request_id
    alias = _convert.set_alias_request("m", "prod", 2, None)
    assert alias.request_id
    assert alias.request_id != first.request_id
    assert alias.version == "models/m/versions/2"
    assert alias.expected_version == ""
    guarded = _convert.set_alias_request("m", "prod", 2, 1)
    assert guarded.expected_version == "models/m/versions/1"


def test_update_version_masks_only_the_given_fields() -> None:
    assert _convert.update_version_request("m", 1, None, None) is None
    description_only = _convert.update_version_request("m", 1, "card", None)
    assert description_only is not None
    assert list(description_only.update_mask.paths) == ["description"]
    clear_labels = _convert.update_version_request("m", 1, None, {})
    assert clear_labels is not None
    assert list(clear_labels.update_mask.paths) == ["labels"]
    both = _convert.update_version_request("m", 1, "", {"a": "b"})
    assert both is not None
    assert list(both.update_mask.paths) == ["description", "labels"]
    assert dict(both.model_version.labels) == {"a": "b"}
    assert both.model_version.name == "models/m/versions/1"
    assert both.request_id


def test_timestamps_naive_is_utc_and_aware_is_converted() -> None:
    naive = _convert.timestamp(datetime(2025, 3, 1, 12, 0))
    aware = _convert.timestamp(datetime(2025, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))))
    assert naive == aware
    assert naive.ToDatetime(tzinfo=UTC) == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    request = _convert.resolve_request("m", datetime(2025, 3, 1, tzinfo=UTC))
    assert request.HasField("as_of_time")
    assert not _convert.resolve_request("m", None).HasField("as_of_time")


def test_audit_and_gc_requests() -> None:
    request = _convert.list_audit_events_request(
        "m", "alice", datetime(2025, 1, 1), None, "event_time asc", 10, "tok"
    )
    assert request.model == "models/m"
    assert request.HasField("start_time")
    assert not request.HasField("end_time")
    assert (request.actor, request.order_by, request.page_size, request.page_token) == (
        "alice", "event_time asc", 10, "tok",
    )  # fmt: skip
    assert _convert.list_audit_events_request("", "", None, None, "", 0, "").model == ""
    moves = _convert.list_audit_events_request("", "", None, None, "", 0, "", "SetAlias")
    assert moves.method == "SetAlias"
    gc = _convert.run_gc_request(True, timedelta(hours=72))
    assert gc.dry_run
    assert gc.grace_period.seconds == 72 * 3600
    assert not _convert.run_gc_request(False, None).HasField("grace_period")


def test_event_types_accept_names_and_numbers() -> None:
    moved = model_event_pb2.MODEL_EVENT_TYPE_ALIAS_MOVED
    ready = model_event_pb2.MODEL_EVENT_TYPE_VERSION_READY
    assert _convert.event_types(["alias_moved", "MODEL_EVENT_TYPE_VERSION_READY", 2]) == [
        moved, ready, moved,
    ]  # fmt: skip
    with pytest.raises(InvalidArgumentError) as info:
        _convert.event_types(["ALIAS_EXPLODED"])
    assert "ALIAS_MOVED" in info.value.message
    request = _convert.watch_request("m", "e1", ["ALIAS_MOVED"])
    assert (request.model, request.after_event_id, list(request.event_types)) == (
        "models/m", "e1", [moved],
    )  # fmt: skip
    assert _convert.watch_request(None, "", ()).model == ""
