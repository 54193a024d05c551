"""Conversions between metadata domain objects and their protobuf messages."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from google.protobuf import json_format

from modelregistry.metadata.v1 import (
    alias_pb2,
    audit_chain_pb2,
    audit_event_pb2,
    model_event_pb2,
    model_pb2,
    model_version_pb2,
)
from modelregistry_server.common.rpc.proto_time import timestamp
from modelregistry_server.metadata.app.audit_chain import ChainReport
from modelregistry_server.metadata.app.ports import AliasRecord
from modelregistry_server.metadata.domain.events import AuditEvent, EventType, ModelEvent
from modelregistry_server.metadata.domain.model import Model, ModelDraft
from modelregistry_server.metadata.domain.version import (
    ManifestFile,
    ModelVersion,
    ParamValue,
    VersionDraft,
    VersionState,
    version_name,
)
from modelregistry_server.metadata.rpc.scan_convert import add_scan


def model_to_proto(model: Model) -> model_pb2.Model:
    """Return the wire form of ``model``."""
    return model_pb2.Model(
        name=model.name,
        uid=model.uid,
        description=model.description,
        labels=dict(model.labels),
        owner=model.owner,
        create_time=timestamp(model.create_time),
        update_time=timestamp(model.update_time),
        etag=model.etag,
    )


def draft_from_proto(message: model_pb2.Model) -> ModelDraft:
    """Return the caller-settable fields of ``message``."""
    return ModelDraft(
        description=message.description, labels=dict(message.labels), owner=message.owner
    )


def _param_to_proto(value: ParamValue) -> model_version_pb2.ParamValue:
    # bool first: it is a subclass of int in Python.
    if isinstance(value, bool):
        return model_version_pb2.ParamValue(bool_value=value)
    if isinstance(value, int):
        return model_version_pb2.ParamValue(int_value=value)
    if isinstance(value, float):
        return model_version_pb2.ParamValue(double_value=value)
    return model_version_pb2.ParamValue(string_value=value)


def _param_from_proto(value: model_version_pb2.ParamValue) -> ParamValue:
    kind = value.WhichOneof("kind")
    if kind is None:
        return ""
    result: ParamValue = getattr(value, kind)
    return result


def version_to_proto(
    version: ModelVersion, *, with_files: bool = True
) -> model_version_pb2.ModelVersion:
    """Return the wire form of a version (with its manifest unless ``with_files`` is false)."""
    draft = version.draft
    message = model_version_pb2.ModelVersion(
        name=version.name,
        version=version.version,
        uid=version.uid,
        state=model_version_pb2.ModelVersionState.Value(
            "MODEL_VERSION_STATE_" + version.state.value
        ),
        description=draft.description,
        labels=dict(draft.labels),
        params={k: _param_to_proto(v) for k, v in draft.params.items()},
        metrics=dict(draft.metrics),
        framework=draft.framework,
        format=draft.format,
        files=[
            model_version_pb2.ManifestFile(
                path=f.path, sha256=f.sha256, size_bytes=f.size, media_type=f.media_type
            )
            for f in (version.files if with_files else ())
        ],
        aliases=list(version.aliases),
        created_by=version.created_by,
        create_time=timestamp(version.create_time),
        update_time=timestamp(version.update_time),
        etag=version.etag,
        total_size_bytes=version.total_size,
    )
    if version.ready_time is not None:
        message.ready_time.CopyFrom(timestamp(version.ready_time))
    add_scan(version, message, with_files)
    # json_format is slow; most versions have no lineage or signature to convert.
    if draft.lineage:
        json_format.ParseDict(dict(draft.lineage), message.lineage)
    if draft.signature:
        json_format.ParseDict(dict(draft.signature), message.signature)
    return message


class VersionMessageCache:
    """Wire messages of READY and ARCHIVED versions, built once and reused (bounded LRU).

    ``version_to_proto`` of a version with lineage and signature costs about as much server CPU
    as a whole empty gRPC call (``json_format`` dominates), and a READY version is immutable
    except for its labels and description (each change gives it a new etag) and its aliases.
    So ``(uid, etag, aliases, scan_verdict)`` (a scan keeps the etag) determines the message
    exactly, and a key that stops being current simply ages out. Returned messages are shared
    between calls: hand them to gRPC as they are and never mutate one
    (``ListModelVersions``, which leaves manifests out, builds its own with
    ``version_to_proto``).
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self._max_entries = max_entries
        self._messages: OrderedDict[
            tuple[str, str, tuple[str, ...], str], model_version_pb2.ModelVersion
        ] = OrderedDict()

    def get(self, version: ModelVersion) -> model_version_pb2.ModelVersion:
        """The wire form of ``version``; treat it as read-only."""
        if version.state is not VersionState.READY and version.state is not VersionState.ARCHIVED:
            return version_to_proto(version)  # still changing: not worth keeping
        key = (version.uid, version.etag, version.aliases, version.scan_verdict)
        message = self._messages.get(key)
        if message is None:
            message = version_to_proto(version)
            self._messages[key] = message
            if len(self._messages) > self._max_entries:
                self._messages.popitem(last=False)
        else:
            self._messages.move_to_end(key)
        return message


def version_draft_from_proto(message: model_version_pb2.ModelVersion) -> VersionDraft:
    """Return the caller-settable fields of ``message``."""
    return VersionDraft(
        description=message.description,
        labels=dict(message.labels),
        params={k: _param_from_proto(v) for k, v in message.params.items()},
        metrics=dict(message.metrics),
        lineage=json_format.MessageToDict(message.lineage, preserving_proto_field_name=True),
        framework=message.framework,
        format=message.format,
        signature=json_format.MessageToDict(message.signature, preserving_proto_field_name=True),
    )


def manifest_from_proto(files: Iterable[model_version_pb2.ManifestFile]) -> list[ManifestFile]:
    """Return the domain form of a manifest."""
    return [ManifestFile(f.path, f.sha256, f.size_bytes, f.media_type) for f in files]


def alias_to_proto(record: AliasRecord) -> alias_pb2.Alias:
    """Return the wire form of an alias."""
    return alias_pb2.Alias(
        name=f"models/{record.model_id}/aliases/{record.alias}",
        version=version_name(record.model_id, record.version),
        update_time=timestamp(record.update_time),
        updated_by=record.updated_by,
    )


def audit_event_to_proto(event: AuditEvent) -> audit_event_pb2.AuditEvent:
    """Return the wire form of an audit event."""
    message = audit_event_pb2.AuditEvent(
        name=f"auditEvents/{event.event_id}",
        actor=event.actor,
        method=event.method,
        resource=event.resource,
        event_time=timestamp(event.event_time),
        request_id=event.request_id,
        trace_id=event.trace_id,
        denied_permission=event.denied_permission,
        model=f"models/{event.model_id}" if event.model_id else "",
        chain_position=event.chain_position,
        previous_hash=event.previous_hash.hex(),
        hash=event.hash.hex(),
    )
    if event.before is not None:
        json_format.ParseDict(dict(event.before), message.before)
    if event.after is not None:
        json_format.ParseDict(dict(event.after), message.after)
    return message


def chain_report_to_proto(report: ChainReport) -> audit_chain_pb2.VerifyAuditLogResponse:
    """Return the wire form of a verification of the audit chain."""
    message = audit_chain_pb2.VerifyAuditLogResponse(
        intact=report.intact,
        event_count=report.count,
        head_chain_position=report.head.position,
        head_hash=report.head.hash.hex(),
        unchained_event_count=report.unchained,
    )
    if report.intact and report.last is not None:
        message.head_audit_event = f"auditEvents/{report.last.event_id}"
        message.head_event_time.CopyFrom(timestamp(report.last.event_time))
    problem = report.problem
    if problem is not None:
        message.problem.kind = audit_chain_pb2.AuditChainProblem.Kind.Value(
            "KIND_" + problem.kind.value
        )
        message.problem.chain_position = problem.position
        message.problem.description = problem.description
        if problem.event_id is not None:
            message.problem.audit_event = f"auditEvents/{problem.event_id}"
        if problem.event_time is not None:
            message.problem.event_time.CopyFrom(timestamp(problem.event_time))
    return message


def model_event_to_proto(event: ModelEvent) -> model_event_pb2.ModelEvent:
    """Return the wire form of a change event."""
    return model_event_pb2.ModelEvent(
        event_id=str(event.event_id),
        type=model_event_pb2.ModelEventType.Value("MODEL_EVENT_TYPE_" + event.type.value),
        model=f"models/{event.model_id}",
        model_version=(
            version_name(event.model_id, event.version) if event.version is not None else ""
        ),
        alias=f"models/{event.model_id}/aliases/{event.alias}" if event.alias else "",
        event_time=timestamp(event.event_time),
        actor=event.actor,
    )


def event_types_from_proto(values: Iterable[int]) -> frozenset[EventType]:
    """Return the domain event types of a request (unknown values are ignored)."""
    names = {
        model_event_pb2.ModelEventType.Name(v).removeprefix("MODEL_EVENT_TYPE_")  # type: ignore[arg-type]
        for v in values
        if v in model_event_pb2.ModelEventType.values()
    }
    return frozenset(EventType(n) for n in names if n in EventType.__members__)
