"""The metadata service's cases of the error-reason catalogue (see test_reason_catalogue.py)."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
from google.protobuf import field_mask_pb2

from modelregistry.metadata.v1 import governance_pb2, model_pb2, model_version_pb2
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from tests.support.metadata import new_model, new_version, push
from tests.support.reason_cases import (
    ABORTED,
    EXHAUSTED,
    INVALID,
    NOT_FOUND,
    PRECONDITION,
    UNAVAILABLE,
    CaseSpec,
    Env,
    HeldStreams,
    T,
    manifest_file,
    ready_version,
    registrar,
    send_raw,
    stop_database,
)

CASES: dict[tuple[str, str], CaseSpec] = {}
_case = registrar(CASES, "metadata")


@_case("FIELD_INVALID", INVALID)
async def _field_invalid(env: Env) -> None:
    await env.registry.metadata.CreateModel(
        ms.CreateModelRequest(model_id="Not A Model Id", model=model_pb2.Model()), timeout=T
    )


@_case("FILTER_INVALID", INVALID)
async def _filter_invalid(env: Env) -> None:
    await env.registry.metadata.ListModels(ms.ListModelsRequest(filter="owner = "), timeout=T)


@_case("ORDER_BY_INVALID", INVALID)
async def _order_by_invalid(env: Env) -> None:
    await env.registry.metadata.ListModels(ms.ListModelsRequest(order_by="owner"), timeout=T)


@_case("PAGE_TOKEN_INVALID", INVALID)
async def _metadata_page_token_invalid(env: Env) -> None:
    await env.registry.metadata.ListModels(
        ms.ListModelsRequest(page_token="not-a-token"), timeout=T
    )


@_case("REFERENCE_INVALID", INVALID)
async def _reference_invalid(env: Env) -> None:
    await env.registry.metadata.ResolveModelVersion(
        ms.ResolveModelVersionRequest(ref="bad ref!"), timeout=T
    )


@_case("MANIFEST_INVALID", INVALID)
async def _manifest_invalid(env: Env) -> None:
    await new_model(env.registry, "m")
    version = await new_version(env.registry, "m")
    await env.registry.metadata.CommitModelVersion(
        ms.CommitModelVersionRequest(name=version.name, files=[manifest_file("../escape", b"x")]),
        timeout=T,
    )


@_case("MODEL_NOT_FOUND", NOT_FOUND)
async def _model_not_found(env: Env) -> None:
    await env.registry.metadata.GetModel(ms.GetModelRequest(name="models/nope"), timeout=T)


@_case("MODEL_VERSION_NOT_FOUND", NOT_FOUND)
async def _version_not_found(env: Env) -> None:
    await new_model(env.registry, "m")
    await env.registry.metadata.GetModelVersion(
        ms.GetModelVersionRequest(name="models/m/versions/9"), timeout=T
    )


@_case("ALIAS_NOT_FOUND", NOT_FOUND)
async def _alias_not_found(env: Env) -> None:
    await new_model(env.registry, "m")
    await env.registry.metadata.DeleteAlias(
        ms.DeleteAliasRequest(name="models/m/aliases/nope"), timeout=T
    )


@_case("MODEL_ALREADY_EXISTS", grpc.StatusCode.ALREADY_EXISTS)
async def _model_already_exists(env: Env) -> None:
    await new_model(env.registry, "m")
    await new_model(env.registry, "m")


@_case("ETAG_MISMATCH", ABORTED)
async def _etag_mismatch(env: Env) -> None:
    await new_model(env.registry, "m")
    await env.registry.metadata.UpdateModel(
        ms.UpdateModelRequest(
            model=model_pb2.Model(name="models/m", owner="x", etag="stale"),
            update_mask=field_mask_pb2.FieldMask(paths=["owner"]),
        ),
        timeout=T,
    )


@_case("ALIAS_VERSION_MISMATCH", ABORTED)
async def _alias_version_mismatch(env: Env) -> None:
    first = await ready_version(env, "m", b"one")
    second = await push(env.registry, "m", {"w.bin": b"two"})
    await env.registry.metadata.SetAlias(
        ms.SetAliasRequest(model="models/m", alias="production", version=first.name), timeout=T
    )
    await env.registry.metadata.SetAlias(
        ms.SetAliasRequest(
            model="models/m",
            alias="production",
            version=second.name,
            expected_version=second.name,  # stale: the alias points at the first version
        ),
        timeout=T,
    )


@_case("CONCURRENT_MODIFICATION", ABORTED)
async def _concurrent_modification(env: Env) -> None:
    await new_model(env.registry, "m")
    conn = await asyncpg.connect(env.database_url)
    try:
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM metadata.models WHERE model_id = 'm' FOR UPDATE")
            await env.registry.metadata.UpdateModel(
                ms.UpdateModelRequest(
                    model=model_pb2.Model(name="models/m", owner="x"),
                    update_mask=field_mask_pb2.FieldMask(paths=["owner"]),
                ),
                timeout=T,
            )
    finally:
        await conn.close()


@_case("MODEL_HAS_VERSIONS", PRECONDITION)
async def _model_has_versions(env: Env) -> None:
    await new_model(env.registry, "m")
    await new_version(env.registry, "m")
    await env.registry.metadata.DeleteModel(ms.DeleteModelRequest(name="models/m"), timeout=T)


@_case("VERSION_NOT_PENDING", PRECONDITION)
async def _version_not_pending(env: Env) -> None:
    version = await ready_version(env, "m")
    await env.registry.metadata.CommitModelVersion(
        ms.CommitModelVersionRequest(name=version.name, files=[manifest_file("w.bin", b"weights")]),
        timeout=T,
    )


@_case("VERSION_NOT_READY", PRECONDITION)
async def _version_not_ready(env: Env) -> None:
    await new_model(env.registry, "m")
    pending = await new_version(env.registry, "m")
    await env.registry.metadata.SetAlias(
        ms.SetAliasRequest(model="models/m", alias="production", version=pending.name), timeout=T
    )


@_case("VERSION_IMMUTABLE", PRECONDITION)
async def _version_immutable(env: Env) -> None:
    version = await ready_version(env, "m")
    await env.registry.metadata.UpdateModelVersion(
        ms.UpdateModelVersionRequest(
            model_version=model_version_pb2.ModelVersion(name=version.name, framework="onnx"),
            update_mask=field_mask_pb2.FieldMask(paths=["framework"]),
        ),
        timeout=T,
    )


@_case("VERSION_DELETED", PRECONDITION)
async def _version_deleted(env: Env) -> None:
    version = await ready_version(env, "m")
    await env.registry.metadata.DeleteModelVersion(
        ms.DeleteModelVersionRequest(name=version.name), timeout=T
    )
    await env.registry.metadata.UpdateModelVersion(
        ms.UpdateModelVersionRequest(
            model_version=model_version_pb2.ModelVersion(name=version.name, description="x"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        ),
        timeout=T,
    )


@_case("BLOBS_MISSING", PRECONDITION)
async def _blobs_missing(env: Env) -> None:
    await new_model(env.registry, "m")
    version = await new_version(env.registry, "m")
    await env.registry.metadata.CommitModelVersion(
        ms.CommitModelVersionRequest(
            name=version.name, files=[manifest_file("w.bin", b"never sent")]
        ),
        timeout=T,
    )


@_case("ARTIFACT_SERVICE_UNAVAILABLE", UNAVAILABLE, setup="metadata_only")
async def _artifact_service_unavailable(env: Env) -> None:
    await new_model(env.registry, "m")
    version = await new_version(env.registry, "m")
    await env.registry.metadata.CommitModelVersion(
        ms.CommitModelVersionRequest(name=version.name, files=[manifest_file("w.bin", b"weights")]),
        timeout=T,
    )


@_case("DATABASE_UNAVAILABLE", UNAVAILABLE)
async def _metadata_database_unavailable(env: Env) -> None:
    await new_model(env.registry, "m")
    await stop_database(env)
    await env.registry.metadata.GetModel(ms.GetModelRequest(name="models/m"), timeout=T)


@_case("REQUEST_MALFORMED", INVALID)
async def _metadata_request_malformed(env: Env) -> None:
    await send_raw(env, "/modelregistry.metadata.v1.MetadataService/GetModel")


@_case("EVENT_ID_EXPIRED", grpc.StatusCode.OUT_OF_RANGE)
async def _event_id_expired(env: Env) -> None:
    await ready_version(env, "m")  # one VERSION_READY event, made 31 days old and then deleted
    conn = await asyncpg.connect(env.database_url)
    try:
        await conn.execute("UPDATE metadata.model_events SET event_time = now() - interval '31 d'")
    finally:
        await conn.close()
    assert env.registry.server.housekeeping is not None
    await env.registry.server.housekeeping.housekeeping_round(force=True)
    watch = env.registry.metadata.WatchModelEvents(
        ms.WatchModelEventsRequest(after_event_id="0"), timeout=T
    )
    async for _ in watch:
        pass


async def _watch(env: Env) -> grpc.aio.UnaryStreamCall:  # type: ignore[type-arg]
    """A WatchModelEvents stream the server has taken (its initial metadata arrived)."""
    call = env.registry.metadata.WatchModelEvents(ms.WatchModelEventsRequest(), timeout=T)
    await call.initial_metadata()
    return call


@_case("TOO_MANY_STREAMS", EXHAUSTED, setup="tight")
async def _metadata_too_many_streams(env: Env) -> None:
    held = HeldStreams()
    await held.open(env, 2)  # uploads count too: 2 streams is the setup's limit per principal
    try:
        watch = await _watch(env)
        async for _ in watch:  # refused: the status ends the stream
            pass
    finally:
        await held.release()


@_case("TOO_MANY_WATCH_STREAMS", EXHAUSTED, setup="tight")
async def _too_many_watch_streams(env: Env) -> None:
    first = await _watch(env)  # the setup allows one watch per principal
    try:
        second = await _watch(env)
        async for _ in second:
            pass
    finally:
        first.cancel()


@_case("SHUTTING_DOWN", UNAVAILABLE)
async def _metadata_shutting_down(env: Env) -> None:
    watch = await _watch(env)
    stopping = asyncio.create_task(env.registry.server.stop(grace=1))
    try:
        async for _ in watch:
            pass
    finally:
        await stopping


@_case("PROMOTION_BLOCKED", PRECONDITION)
async def _promotion_blocked(env: Env) -> None:
    version = await ready_version(env, "gated")
    rule = governance_pb2.ProtectionRule(
        name="protectionRules/gated/aliases/production", required_checks=["eval/accuracy"]
    )
    await env.registry.metadata.SetProtectionRule(
        governance_pb2.SetProtectionRuleRequest(protection_rule=rule), timeout=T
    )
    await env.registry.metadata.SetAlias(
        ms.SetAliasRequest(model="models/gated", alias="production", version=version.name),
        timeout=T,
    )


@_case("SELF_APPROVAL", PRECONDITION)
async def _self_approval(env: Env) -> None:
    version = await ready_version(env, "mine")  # created by the admin this case calls as
    await env.registry.metadata.ApproveModelVersion(
        governance_pb2.ApproveModelVersionRequest(name=version.name, alias="production"),
        timeout=T,
    )
