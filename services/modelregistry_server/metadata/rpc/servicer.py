"""MetadataService servicer: validates nothing itself, only translates to and from use cases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import empty_pb2

from modelregistry.metadata.v1 import (
    alias_pb2,
    audit_chain_pb2,
    metadata_service_pb2,
    metadata_service_pb2_grpc,
    model_event_pb2,
    model_pb2,
    model_version_pb2,
)
from modelregistry_server.common.kernel.errors import PermissionDenied
from modelregistry_server.common.kernel.identity import Permission, Visibility
from modelregistry_server.common.rpc.auth import current_access, current_principal
from modelregistry_server.common.rpc.handlers import (
    fill_unimplemented,
    stream_errors,
    unary_errors,
)
from modelregistry_server.common.rpc.proto_time import request_duration, request_time
from modelregistry_server.common.rpc.status import to_status
from modelregistry_server.metadata.app.events import EventService
from modelregistry_server.metadata.app.gc import GarbageCollector
from modelregistry_server.metadata.app.governance import GovernanceService
from modelregistry_server.metadata.app.models import ModelService
from modelregistry_server.metadata.app.versions import VersionService
from modelregistry_server.metadata.rpc.convert import (
    VersionMessageCache,
    alias_to_proto,
    audit_event_to_proto,
    chain_report_to_proto,
    draft_from_proto,
    event_types_from_proto,
    manifest_from_proto,
    model_event_to_proto,
    model_to_proto,
    version_draft_from_proto,
    version_to_proto,
)
from modelregistry_server.metadata.rpc.governance import GovernanceRpc

_Context = grpc.aio.ServicerContext[Any, Any]
# The user a service acts for (honoured only from an impersonator; see _actor).
ACTOR_HEADER = "x-modelregistry-actor"
# Response header of WatchModelEvents (see the proto); the client SDK spells it too.
WATCH_START_HEADER = "x-modelregistry-watch-after-event-id"


def _readable() -> Visibility:
    """The models the caller may read: what listings and watches may show it."""
    return current_access().visibility(Permission.READ)


def _actor(context: _Context) -> str:
    """Who made a change, for created_by and the audit log: the authenticated principal.

    The ``x-modelregistry-actor`` header names someone else only for a principal bound to the
    ``impersonator`` role (a service acting for a user); the log then records both names,
    ``<user> via <service>``. From anyone else the header is ignored: a caller cannot write
    another name into the audit log.
    """
    principal = current_principal().name
    claimed = next((v for k, v in context.invocation_metadata() or () if k == ACTOR_HEADER), None)
    if not isinstance(claimed, str) or not claimed or claimed == principal:
        return principal
    try:
        current_access().require(Permission.IMPERSONATE, None)
    except PermissionDenied:
        return principal
    return f"{claimed[:128]} via {principal}"


# A protection rule's mover "role:<name>" matches a caller who holds, on the model, the
# permission that sets the role apart from the one below it (see role_binding.proto).
_ROLE_MOVERS = {"role:admin": Permission.ADMINISTER, "role:maintainer": Permission.MANAGE_ALIASES}


def _mover_subjects(model: str) -> frozenset[str]:
    """Who the caller is to a protection rule's movers: its groups and the roles it holds."""
    access = current_access()
    model_id = model.removeprefix("models/")
    roles = {
        role for role, permission in _ROLE_MOVERS.items() if access.holds(permission, model_id)
    }
    return frozenset({f"group:{g}" for g in current_principal().groups} | roles)


class MetadataServicer(GovernanceRpc, metadata_service_pb2_grpc.MetadataServiceServicer):
    """Serves models, versions and aliases; audit listing, events and GC arrive next."""

    def __init__(
        self,
        models: ModelService,
        versions: VersionService,
        events: EventService,
        gc: GarbageCollector,
        governance: GovernanceService,
    ) -> None:
        self._governance = governance
        self._models = models
        self._versions = versions
        self._events = events
        self._gc = gc
        # Resolve and Get of READY versions reuse built messages (see VersionMessageCache).
        self._version_messages = VersionMessageCache()

    def _caller(self, context: _Context) -> str:
        return _actor(context)

    @unary_errors(to_status)
    async def CreateModel(  # noqa: N802 - gRPC method names are PascalCase
        self, request: metadata_service_pb2.CreateModelRequest, context: _Context
    ) -> model_pb2.Model:
        """See the proto."""
        model = await self._models.create_model(
            request.model_id, draft_from_proto(request.model), request.request_id, _actor(context)
        )
        return model_to_proto(model)

    @unary_errors(to_status)
    async def GetModel(  # noqa: N802
        self, request: metadata_service_pb2.GetModelRequest, context: _Context
    ) -> model_pb2.Model:
        """See the proto."""
        return model_to_proto(await self._models.get_model(request.name))

    @unary_errors(to_status)
    async def ListModels(  # noqa: N802
        self, request: metadata_service_pb2.ListModelsRequest, context: _Context
    ) -> metadata_service_pb2.ListModelsResponse:
        """See the proto."""
        page = await self._models.list_models(
            request.page_size, request.page_token, request.filter, request.order_by, _readable()
        )
        return metadata_service_pb2.ListModelsResponse(
            models=[model_to_proto(m) for m in page.items],
            next_page_token=page.next_page_token,
        )

    @unary_errors(to_status)
    async def UpdateModel(  # noqa: N802
        self, request: metadata_service_pb2.UpdateModelRequest, context: _Context
    ) -> model_pb2.Model:
        """See the proto."""
        model = await self._models.update_model(
            request.model.name,
            draft_from_proto(request.model),
            list(request.update_mask.paths),
            request.model.etag,
            request.request_id,
            _actor(context),
        )
        return model_to_proto(model)

    @unary_errors(to_status)
    async def DeleteModel(  # noqa: N802
        self, request: metadata_service_pb2.DeleteModelRequest, context: _Context
    ) -> empty_pb2.Empty:
        """See the proto."""
        await self._models.delete_model(
            request.name, request.etag, request.request_id, request.force, _actor(context)
        )
        return empty_pb2.Empty()

    # ------------------------------------------------------------------ versions

    @unary_errors(to_status)
    async def CreateModelVersion(  # noqa: N802
        self, request: metadata_service_pb2.CreateModelVersionRequest, context: _Context
    ) -> model_version_pb2.ModelVersion:
        """See the proto."""
        version = await self._versions.create_version(
            request.parent,
            version_draft_from_proto(request.model_version),
            _actor(context),
            request.request_id,
        )
        return version_to_proto(version)

    @unary_errors(to_status)
    async def GetModelVersion(  # noqa: N802
        self, request: metadata_service_pb2.GetModelVersionRequest, context: _Context
    ) -> model_version_pb2.ModelVersion:
        """See the proto."""
        return self._version_messages.get(await self._versions.get_version(request.name))

    @unary_errors(to_status)
    async def ListModelVersions(  # noqa: N802
        self, request: metadata_service_pb2.ListModelVersionsRequest, context: _Context
    ) -> metadata_service_pb2.ListModelVersionsResponse:
        """See the proto."""
        page = await self._versions.list_versions(
            request.parent,
            request.page_size,
            request.page_token,
            request.filter,
            request.order_by,
            request.show_deleted,
            _readable(),
        )
        return metadata_service_pb2.ListModelVersionsResponse(
            # Listings leave manifests out to keep pages small.
            model_versions=[version_to_proto(v, with_files=False) for v in page.items],
            next_page_token=page.next_page_token,
        )

    @unary_errors(to_status)
    async def UpdateModelVersion(  # noqa: N802
        self, request: metadata_service_pb2.UpdateModelVersionRequest, context: _Context
    ) -> model_version_pb2.ModelVersion:
        """See the proto."""
        version = await self._versions.update_version(
            request.model_version.name,
            version_draft_from_proto(request.model_version),
            list(request.update_mask.paths),
            request.model_version.etag,
            _actor(context),
            request.request_id,
        )
        return version_to_proto(version)

    @unary_errors(to_status)
    async def DeleteModelVersion(  # noqa: N802
        self, request: metadata_service_pb2.DeleteModelVersionRequest, context: _Context
    ) -> model_version_pb2.ModelVersion:
        """See the proto."""
        version = await self._versions.delete_version(
            request.name, request.etag, _actor(context), request.request_id
        )
        return version_to_proto(version)

    @unary_errors(to_status)
    async def CommitModelVersion(  # noqa: N802
        self, request: metadata_service_pb2.CommitModelVersionRequest, context: _Context
    ) -> model_version_pb2.ModelVersion:
        """See the proto."""
        version = await self._versions.commit_version(
            request.name,
            manifest_from_proto(request.files),
            request.etag,
            _actor(context),
            request.request_id,
        )
        return version_to_proto(version)

    @unary_errors(to_status)
    async def ResolveModelVersion(  # noqa: N802
        self, request: metadata_service_pb2.ResolveModelVersionRequest, context: _Context
    ) -> model_version_pb2.ModelVersion:
        """See the proto."""
        as_of = request_time(request, "as_of_time")
        version = await self._versions.resolve(request.ref, as_of)
        # A uid names no model: the permission table could not check it before the lookup.
        current_access().require(Permission.READ, version.model_id)
        return self._version_messages.get(version)

    # ------------------------------------------------------------------ aliases

    @unary_errors(to_status)
    async def SetAlias(  # noqa: N802
        self, request: metadata_service_pb2.SetAliasRequest, context: _Context
    ) -> alias_pb2.Alias:
        """See the proto."""
        record = await self._versions.set_alias(
            request.model,
            request.alias,
            request.version,
            request.expected_version,
            _actor(context),
            request.request_id,
            _mover_subjects(request.model),
        )
        return alias_to_proto(record)

    @unary_errors(to_status)
    async def DeleteAlias(  # noqa: N802
        self, request: metadata_service_pb2.DeleteAliasRequest, context: _Context
    ) -> empty_pb2.Empty:
        """See the proto."""
        await self._versions.delete_alias(request.name, _actor(context), request.request_id)
        return empty_pb2.Empty()

    @unary_errors(to_status)
    async def ListAliases(  # noqa: N802
        self, request: metadata_service_pb2.ListAliasesRequest, context: _Context
    ) -> metadata_service_pb2.ListAliasesResponse:
        """See the proto."""
        page = await self._versions.list_aliases(
            request.parent, request.page_size, request.page_token
        )
        return metadata_service_pb2.ListAliasesResponse(
            aliases=[alias_to_proto(r) for r in page.items], next_page_token=page.next_page_token
        )

    # ------------------------------------------------------------------ audit and events

    @unary_errors(to_status)
    async def ListAuditEvents(  # noqa: N802
        self, request: metadata_service_pb2.ListAuditEventsRequest, context: _Context
    ) -> metadata_service_pb2.ListAuditEventsResponse:
        """See the proto."""
        page = await self._events.list_audit_events(
            request.page_size,
            request.page_token,
            request.model,
            request_time(request, "start_time"),
            request_time(request, "end_time"),
            request.actor,
            request.order_by,
            _readable(),
            method=request.method,
        )
        return metadata_service_pb2.ListAuditEventsResponse(
            audit_events=[audit_event_to_proto(e) for e in page.items],
            next_page_token=page.next_page_token,
        )

    @unary_errors(to_status)
    async def VerifyAuditLog(  # noqa: N802
        self, request: audit_chain_pb2.VerifyAuditLogRequest, context: _Context
    ) -> audit_chain_pb2.VerifyAuditLogResponse:
        """See the proto."""
        report = await self._events.verify_audit_log(
            request.anchor_chain_position, request.anchor_hash
        )
        return chain_report_to_proto(report)

    @unary_errors(to_status)
    async def ExportAuditLog(  # noqa: N802
        self, request: audit_chain_pb2.ExportAuditLogRequest, context: _Context
    ) -> audit_chain_pb2.ExportAuditLogResponse:
        """See the proto."""
        page = await self._events.export_audit_log(
            request.page_size, request.page_token, request_time(request, "start_time")
        )
        return audit_chain_pb2.ExportAuditLogResponse(
            audit_events=[audit_event_to_proto(e) for e in page.items],
            next_page_token=page.next_page_token,
        )

    @stream_errors(to_status)
    async def WatchModelEvents(  # noqa: N802
        self, request: metadata_service_pb2.WatchModelEventsRequest, context: _Context
    ) -> AsyncIterator[model_event_pb2.ModelEvent]:
        """See the proto."""
        subscription = await self._events.subscribe(
            request.model,
            request.after_event_id,
            event_types_from_proto(request.event_types),
            _readable(),
        )
        # The response headers say "subscribed": sent before any event, they name the event
        # the stream starts after, so a client can wait for them before reading state.
        await context.send_initial_metadata(((WATCH_START_HEADER, subscription.after_event_id),))
        async for event in subscription.events:
            yield model_event_to_proto(event)

    @unary_errors(to_status)
    async def RunGarbageCollection(  # noqa: N802
        self, request: metadata_service_pb2.RunGarbageCollectionRequest, context: _Context
    ) -> metadata_service_pb2.RunGarbageCollectionResponse:
        """See the proto."""
        result = await self._gc.run(
            request.dry_run,
            request_duration(request, "grace_period"),
            request_duration(request, "pending_version_ttl"),
            _actor(context),
            request.request_id,
            list(request.blobs),
        )
        return metadata_service_pb2.RunGarbageCollectionResponse(
            deleted_blobs=result.deleted_blobs,
            deleted_size_bytes=result.deleted_size_bytes,
            expired_version_count=result.expired_version_count,
            dry_run=result.dry_run,
            deleted_blob_count=result.deleted_blob_count,
        )


# Methods of the contract this release does not serve answer UNIMPLEMENTED, saying so.
fill_unimplemented(
    MetadataServicer, metadata_service_pb2.DESCRIPTOR.services_by_name["MetadataService"]
)
