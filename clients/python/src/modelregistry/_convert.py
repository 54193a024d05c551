"""Conversions between Python values and the wire messages.

Shared by :class:`~modelregistry.client.Client` and :class:`~modelregistry.aio.AsyncClient`, so
the two build identical requests. Nothing here does I/O.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal

from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2

from modelregistry._refs import MODEL_PREFIX
from modelregistry.access.v1 import access_service_pb2
from modelregistry.errors import InvalidArgumentError
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_event_pb2, model_pb2, model_version_pb2

ParamPyValue = str | int | float | bool


# ---------------------------------------------------------------- params


def param_to_proto(key: str, value: ParamPyValue) -> model_version_pb2.ParamValue:
    """One typed parameter value. ``bool`` is tested before ``int``: ``True`` is an ``int``."""
    if isinstance(value, bool):
        return model_version_pb2.ParamValue(bool_value=value)
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise _bad_value("param", key, f"integer {value} does not fit in 64 bits")
        return model_version_pb2.ParamValue(int_value=value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _bad_value("param", key, f"{value} is not a finite number")
        return model_version_pb2.ParamValue(double_value=value)
    if isinstance(value, str):
        return model_version_pb2.ParamValue(string_value=value)
    raise _bad_value(
        "param", key, f"has unsupported type {type(value).__name__} (str, int, float, bool)"
    )


def params_to_proto(
    params: Mapping[str, ParamPyValue] | None,
) -> dict[str, model_version_pb2.ParamValue]:
    """Typed parameter values for ``ModelVersion.params``."""
    return {key: param_to_proto(key, value) for key, value in (params or {}).items()}


def param_from_proto(value: model_version_pb2.ParamValue) -> ParamPyValue:
    """The Python value of a wire parameter (``str``, ``int``, ``float`` or ``bool``)."""
    kind = value.WhichOneof("kind")
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "string_value":
        return value.string_value
    # The server never sends an empty value; an empty string is the least surprising reading.
    return ""


def params_from_proto(
    params: Mapping[str, model_version_pb2.ParamValue],
) -> dict[str, ParamPyValue]:
    """All parameters of a version as Python values."""
    return {key: param_from_proto(value) for key, value in params.items()}


def metrics_to_proto(metrics: Mapping[str, float] | None) -> dict[str, float]:
    """Metric values as doubles, rejecting what the server would (non-numbers, NaN, inf)."""
    out: dict[str, float] = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad_value("metric", key, f"must be a number, not {type(value).__name__}")
        if not math.isfinite(value):
            raise _bad_value("metric", key, f"is {value}, which is not a finite number")
        out[key] = float(value)
    return out


def _bad_value(kind: Literal["param", "metric"], key: str, problem: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"{kind} {key!r} {problem}", reason="FIELD_INVALID", metadata={"field": f"{kind}s.{key}"}
    )


# ---------------------------------------------------------------- names


def model_id(model: str) -> str:
    """``resnet`` from ``resnet`` or ``models/resnet``."""
    return model.removeprefix(MODEL_PREFIX)


def model_name(model: str) -> str:
    """The resource name ``models/{model}``; accepts the id or the full name."""
    return MODEL_PREFIX + model_id(model)


def version_name(model: str, version: int) -> str:
    """``models/{model}/versions/{version}``."""
    if isinstance(version, bool) or not isinstance(version, int):
        raise InvalidArgumentError(
            f"version must be an integer, not {type(version).__name__}",
            reason="FIELD_INVALID",
            metadata={"field": "version"},
        )
    return f"{model_name(model)}/versions/{version}"


def alias_name(model: str, alias: str) -> str:
    """``models/{model}/aliases/{alias}``."""
    return f"{model_name(model)}/aliases/{alias}"


# ---------------------------------------------------------------- time and enums


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    """A Timestamp from a datetime; a naive datetime is taken as UTC (as protobuf does)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value)
    return message


def duration(value: timedelta) -> duration_pb2.Duration:
    """A Duration from a timedelta."""
    message = duration_pb2.Duration()
    message.FromTimedelta(value)
    return message


def event_types(
    values: Iterable[int | str],
) -> list[model_event_pb2.ModelEventType.ValueType]:
    """Event type enum values from numbers or names (``ALIAS_MOVED`` or the full enum name)."""
    out: list[model_event_pb2.ModelEventType.ValueType] = []
    for value in values:
        if isinstance(value, str):
            name = value.strip().upper()
            if not name.startswith("MODEL_EVENT_TYPE_"):
                name = "MODEL_EVENT_TYPE_" + name
            try:
                out.append(model_event_pb2.ModelEventType.Value(name))
            except ValueError:
                known = ", ".join(
                    n.removeprefix("MODEL_EVENT_TYPE_")
                    for n in model_event_pb2.ModelEventType.keys()[1:]
                )
                raise InvalidArgumentError(
                    f"unknown event type {value!r}; use one of {known}",
                    reason="FIELD_INVALID",
                    metadata={"field": "event_types"},
                ) from None
        else:
            out.append(model_event_pb2.ModelEventType.ValueType(value))
    return out


# ---------------------------------------------------------------- requests
# Built here so the sync and async clients send byte-identical requests.


def request_id() -> str:
    """A fresh idempotency key. One per logical call: retries resend the same request object,
    so the server applies the change once however many attempts reach it."""
    return str(uuid.uuid4())


def create_model_request(
    name: str, description: str, labels: Mapping[str, str] | None
) -> ms.CreateModelRequest:
    """``CreateModel`` with a fresh request_id."""
    return ms.CreateModelRequest(
        model_id=model_id(name),
        model=model_pb2.Model(description=description, labels=dict(labels or {})),
        request_id=request_id(),
    )


def list_models_request(
    filter: str, order_by: str, page_size: int, page_token: str
) -> ms.ListModelsRequest:
    """One page of ``ListModels``."""
    return ms.ListModelsRequest(
        filter=filter, order_by=order_by, page_size=page_size, page_token=page_token
    )


def list_versions_request(
    model: str, filter: str, order_by: str, page_size: int, show_deleted: bool, page_token: str
) -> ms.ListModelVersionsRequest:
    """One page of ``ListModelVersions``; ``model`` ``-`` lists every model's versions."""
    return ms.ListModelVersionsRequest(
        parent=model_name(model),
        filter=filter,
        order_by=order_by,
        page_size=page_size,
        show_deleted=show_deleted,
        page_token=page_token,
    )


def resolve_request(ref: str, as_of: datetime | None) -> ms.ResolveModelVersionRequest:
    """``ResolveModelVersion``; the server validates the reference (one grammar, one place)."""
    request = ms.ResolveModelVersionRequest(ref=ref)
    if as_of is not None:
        request.as_of_time.CopyFrom(timestamp(as_of))
    return request


def delete_model_request(name: str, force: bool) -> ms.DeleteModelRequest:
    """``DeleteModel`` with a fresh request_id."""
    return ms.DeleteModelRequest(name=model_name(name), force=force, request_id=request_id())


def delete_version_request(model: str, version: int) -> ms.DeleteModelVersionRequest:
    """``DeleteModelVersion`` with a fresh request_id."""
    return ms.DeleteModelVersionRequest(name=version_name(model, version), request_id=request_id())


def delete_alias_request(model: str, alias: str) -> ms.DeleteAliasRequest:
    """``DeleteAlias`` with a fresh request_id."""
    return ms.DeleteAliasRequest(name=alias_name(model, alias), request_id=request_id())


def update_version_request(
    model: str, version: int, description: str | None, labels: Mapping[str, str] | None
) -> ms.UpdateModelVersionRequest | None:
    """``UpdateModelVersion`` touching only the given fields, or None if nothing is given.

    The mask must never be empty: an empty mask means "every updatable field" on the server,
    which would clear whatever the caller did not pass.
    """
    paths: list[str] = []
    message = model_version_pb2.ModelVersion(name=version_name(model, version))
    if description is not None:
        message.description = description
        paths.append("description")
    if labels is not None:
        message.labels.update(labels)
        paths.append("labels")
    if not paths:
        return None
    return ms.UpdateModelVersionRequest(
        model_version=message,
        update_mask=field_mask_pb2.FieldMask(paths=paths),
        request_id=request_id(),
    )


def set_alias_request(
    model: str, alias: str, version: int, expected_version: int | None
) -> ms.SetAliasRequest:
    """``SetAlias`` with a fresh request_id and an optional compare-and-set guard."""
    return ms.SetAliasRequest(
        model=model_name(model),
        alias=alias,
        version=version_name(model, version),
        expected_version=(
            version_name(model, expected_version) if expected_version is not None else ""
        ),
        request_id=request_id(),
    )


def watch_request(
    model: str | None, after_event_id: str, types: Iterable[int | str]
) -> ms.WatchModelEventsRequest:
    """``WatchModelEvents`` for one model (or all, if None/empty), resuming after an event."""
    return ms.WatchModelEventsRequest(
        model=model_name(model) if model else "",
        after_event_id=after_event_id,
        event_types=event_types(types),
    )


def list_audit_events_request(
    model: str,
    actor: str,
    start: datetime | None,
    end: datetime | None,
    order_by: str,
    page_size: int,
    page_token: str,
    method: str = "",
) -> ms.ListAuditEventsRequest:
    """One page of ``ListAuditEvents``; ``start`` is inclusive, ``end`` exclusive."""
    request = ms.ListAuditEventsRequest(
        model=model_name(model) if model else "",
        actor=actor,
        method=method,
        order_by=order_by,
        page_size=page_size,
        page_token=page_token,
    )
    if start is not None:
        request.start_time.CopyFrom(timestamp(start))
    if end is not None:
        request.end_time.CopyFrom(timestamp(end))
    return request


def run_gc_request(dry_run: bool, grace_period: timedelta | None) -> ms.RunGarbageCollectionRequest:
    """``RunGarbageCollection`` with a fresh request_id (recorded in the run's audit event); an
    unset grace period means the server's default (48 h)."""
    request = ms.RunGarbageCollectionRequest(dry_run=dry_run, request_id=request_id())
    if grace_period is not None:
        request.grace_period.CopyFrom(duration(grace_period))
    return request


def create_token_request(
    principal: str, description: str, ttl: timedelta | None
) -> access_service_pb2.CreateAccessTokenRequest:
    """``CreateAccessTokenRequest``; no ``ttl`` means the token never expires."""
    request = access_service_pb2.CreateAccessTokenRequest(
        principal=principal, description=description
    )
    if ttl is not None:
        request.ttl.FromTimedelta(ttl)
    return request


def list_tokens_request(
    principal: str, show_inactive: bool, page_token: str
) -> access_service_pb2.ListAccessTokensRequest:
    """One page (up to 1000) of ``ListAccessTokens``."""
    return access_service_pb2.ListAccessTokensRequest(
        page_size=1000, page_token=page_token, principal=principal, show_inactive=show_inactive
    )


def token_name(name: str) -> str:
    """``tokens/<id>`` from either that or the bare id."""
    return name if name.startswith("tokens/") else f"tokens/{name}"
