"""The JSON API transcoded from the protos, against a real server over HTTP: the real ``curl``
binary for what the README shows, aiohttp for the rest.

Every call goes through the server's own gRPC interceptors, so identity, permissions, errors
and audit rows are the gRPC ones; these tests check that they reach an HTTP caller intact.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from urllib.parse import quote

import aiohttp
import pytest
from openapi_spec_validator import validate

from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_pb2
from modelregistry_server.web import api
from tests.conftest import RunningRegistry
from tests.support.auth import ADMIN_TOKEN, create_token
from tests.support.http_api import base_url, curl, error_info, next_events, preamble, session
from tests.support.metadata import new_model, push

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

JSON = "application/json; charset=utf-8"
ALIAS_MOVES = "event_types=MODEL_EVENT_TYPE_ALIAS_MOVED&eventTypes=MODEL_EVENT_TYPE_ALIAS_DELETED"


async def test_curl_lists_models_as_json(registry: RunningRegistry) -> None:
    for model_id in ("fraud", "churn"):
        await registry.metadata.CreateModel(
            ms.CreateModelRequest(
                model_id=model_id, model=model_pb2.Model(description=f"the {model_id} model")
            )
        )
    reply = await curl(
        "-H", f"Authorization: Bearer {ADMIN_TOKEN}", f"{base_url(registry)}/v1/models"
    )
    assert reply.status == 200
    assert reply.headers["content-type"] == JSON
    models = reply.json()["models"]
    assert [m["name"] for m in models] == ["models/churn", "models/fraud"]
    assert models[1]["description"] == "the fraud model"
    assert models[1]["createTime"].endswith("Z")  # the proto JSON mapping: RFC 3339, camelCase
    assert "create_time" not in models[1]


async def test_curl_gets_errors_as_google_rpc_status_with_the_error_info(
    registry: RunningRegistry,
) -> None:
    await new_model(registry, "fraud")
    base = base_url(registry)
    admin = ("-H", f"Authorization: Bearer {ADMIN_TOKEN}")

    missing = await curl(*admin, f"{base}/v1/models/nope")
    assert missing.status == 404
    assert missing.headers["content-type"] == JSON
    document = missing.json()
    assert document["code"] == 5  # NOT_FOUND
    assert "nope" in document["message"]
    info = error_info(document)
    assert (info["reason"], info["domain"]) == ("MODEL_NOT_FOUND", "modelregistry")

    anonymous = await curl(f"{base}/v1/models")
    assert anonymous.status == 401
    assert anonymous.json()["code"] == 16  # UNAUTHENTICATED
    assert error_info(anonymous.json())["reason"] == "TOKEN_MISSING"

    forged = await curl("-H", "Authorization: Bearer mr1_not_a_real_token", f"{base}/v1/models")
    assert forged.status == 401
    assert error_info(forged.json())["reason"] == "TOKEN_INVALID"

    viewer = await create_token(registry.target, "intern", "viewer", "fraud")
    denied = await curl(
        "-X", "DELETE", "-H", f"Authorization: Bearer {viewer}", f"{base}/v1/models/fraud"
    )
    assert denied.status == 403
    assert denied.json()["code"] == 7  # PERMISSION_DENIED
    assert error_info(denied.json())["reason"] == "PERMISSION_DENIED"
    still_there = await curl(*admin, f"{base}/v1/models/fraud")
    assert still_there.status == 200

    bad_filter = await curl(*admin, f"{base}/v1/models?filter={quote('labels.team = (((')}")
    assert bad_filter.status == 400
    assert bad_filter.json()["code"] == 3  # INVALID_ARGUMENT
    assert error_info(bad_filter.json())["reason"] == "FILTER_INVALID"


async def test_a_token_that_is_not_ascii_is_refused_as_invalid_not_a_server_error(
    registry: RunningRegistry,
) -> None:
    reply = await curl("-H", "Authorization: Bearer tök€n", f"{base_url(registry)}/v1/models")
    assert reply.status == 401
    assert reply.json()["code"] == 16


async def test_models_are_created_updated_and_deleted_over_json(registry: RunningRegistry) -> None:
    async with session(registry, ADMIN_TOKEN) as http:
        created = await http.post(
            "/v1/models?model_id=fraud",
            json={"description": "first", "labels": {"team": "risk"}, "owner": "ann"},
        )
        assert created.status == 200, await created.text()
        model = await created.json()
        assert model["name"] == "models/fraud"
        assert model["labels"] == {"team": "risk"}

        taken = await http.post("/v1/models?modelId=fraud", json={})
        assert taken.status == 409
        assert error_info(await taken.json())["reason"] == "MODEL_ALREADY_EXISTS"

        updated = await http.patch(
            "/v1/models/fraud?updateMask=description",
            json={"description": "second", "labels": {"ignored": "not in the mask"}},
        )
        assert updated.status == 200, await updated.text()
        after = await updated.json()
        assert after["description"] == "second"
        assert after["labels"] == {"team": "risk"}  # outside the update mask
        assert after["etag"] != model["etag"]

        stale = await http.patch(
            "/v1/models/fraud?update_mask=owner", json={"owner": "bob", "etag": model["etag"]}
        )
        assert stale.status == 409
        assert (await stale.json())["code"] == 10  # ABORTED: the etag is stale

        deleted = await http.delete("/v1/models/fraud")
        assert deleted.status == 200
        assert await deleted.json() == {}
        gone = await http.get("/v1/models/fraud")
        assert gone.status == 404


async def test_versions_are_listed_with_filter_order_and_pages(registry: RunningRegistry) -> None:
    await new_model(registry, "fraud")
    async with session(registry, ADMIN_TOKEN) as http:
        for number in range(1, 6):
            created = await http.post(
                "/v1/models/fraud/versions",
                json={
                    "description": f"v{number}",
                    "labels": {"parity": "odd" if number % 2 else "even"},
                },
            )
            assert created.status == 200, await created.text()
            version = await created.json()
            assert version["name"] == f"models/fraud/versions/{number}"
            assert version["state"] == "MODEL_VERSION_STATE_PENDING"  # enums by name
            assert version["version"] == str(number)  # an int64 is a JSON string

        names: list[str] = []
        token = ""
        pages = 0
        while True:
            query = {"filter": 'labels.parity = "odd"', "order_by": "version asc", "page_size": "2"}
            if token:
                query["pageToken"] = token
            reply = await http.get("/v1/models/fraud/versions", params=query)
            assert reply.status == 200, await reply.text()
            page = await reply.json()
            names += [v["name"] for v in page["modelVersions"]]
            pages += 1
            token = page.get("nextPageToken", "")
            if not token:
                break
        assert names == [f"models/fraud/versions/{n}" for n in (1, 3, 5)]
        assert pages == 2

        newest_first = await (await http.get("/v1/models/fraud/versions?pageSize=1")).json()
        assert [v["name"] for v in newest_first["modelVersions"]] == ["models/fraud/versions/5"]


async def test_an_alias_is_set_on_a_ready_version_and_resolved(registry: RunningRegistry) -> None:
    await new_model(registry, "fraud")
    weights = os.urandom(64)
    ready = await push(registry, "fraud", {"model.bin": weights})
    async with session(registry, ADMIN_TOKEN) as http:
        moved = await http.post(
            "/v1/models/fraud/aliases", json={"alias": "production", "version": ready.name}
        )
        assert moved.status == 200, await moved.text()
        alias = await moved.json()
        assert alias["name"] == "models/fraud/aliases/production"
        assert alias["version"] == ready.name

        resolved = await http.get("/v1/versions:resolve", params={"ref": "fraud@production"})
        assert resolved.status == 200, await resolved.text()
        version = await resolved.json()
        assert version["name"] == ready.name
        assert version["state"] == "MODEL_VERSION_STATE_READY"
        assert [(f["path"], f["sizeBytes"]) for f in version["files"]] == [("model.bin", "64")]

        listed = await (await http.get("/v1/models/fraud/aliases")).json()
        assert [a["name"] for a in listed["aliases"]] == ["models/fraud/aliases/production"]

        pending = await http.post("/v1/models/fraud/versions", json={})
        not_ready = await http.post(
            "/v1/models/fraud/aliases",
            json={"alias": "production", "version": (await pending.json())["name"]},
        )
        assert not_ready.status == 400  # FAILED_PRECONDITION
        assert (await not_ready.json())["code"] == 9

        unresolvable = await http.get("/v1/versions:resolve?ref=fraud@staging")
        assert unresolvable.status == 404
        assert error_info(await unresolvable.json())["reason"] == "ALIAS_NOT_FOUND"


async def test_whoami_names_the_http_caller(registry: RunningRegistry) -> None:
    token = await create_token(registry.target, "alice@example.com", "viewer", "fraud")
    async with session(registry, token) as http:
        reply = await http.get("/v1/whoami")
        assert reply.status == 200
        me = await reply.json()
    assert me["principal"] == "alice@example.com"
    assert me["authenticationMethod"] == "token"
    assert me["token"].startswith("tokens/")


async def test_the_audit_log_names_the_http_caller_as_actor(registry: RunningRegistry) -> None:
    token = await create_token(registry.target, "alice@example.com", "maintainer", "fraud")
    async with session(registry, token, **{"x-modelregistry-actor": "mallory"}) as http:
        created = await http.post("/v1/models?model_id=fraud", json={"description": "d"})
        assert created.status == 200, await created.text()
        patched = await http.patch(
            "/v1/models/fraud?updateMask=description", json={"description": "e"}
        )
        assert patched.status == 200
        reply = await http.get(
            "/v1/auditEvents", params={"model": "models/fraud", "order_by": "event_time asc"}
        )
        assert reply.status == 200, await reply.text()
        events = (await reply.json())["auditEvents"]
    assert [(e["method"], e["actor"]) for e in events] == [
        ("CreateModel", "alice@example.com"),
        ("UpdateModel", "alice@example.com"),
    ]
    grpc_view = await registry.metadata.ListAuditEvents(
        ms.ListAuditEventsRequest(model="models/fraud", actor="alice@example.com")
    )
    assert len(grpc_view.audit_events) == 2


async def test_the_served_openapi_document_validates(registry: RunningRegistry) -> None:
    reply = await curl(f"{base_url(registry)}/openapi.json")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/json")
    document = reply.json()
    validate(document)
    operations = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    assert {"ListModels", "GetModel", "SetAlias", "WatchModelEvents", "WhoAmI"} <= operations
    assert document["paths"]["/v1/models/{model}"].keys() == {"get", "patch", "delete"}


async def _move(registry: RunningRegistry, alias: str, version: str) -> None:
    await registry.metadata.SetAlias(
        ms.SetAliasRequest(model="models/fraud", alias=alias, version=version)
    )


async def test_the_watch_streams_server_sent_events_and_resumes_after_last_event_id(
    registry: RunningRegistry,
) -> None:
    await new_model(registry, "fraud")
    v1 = await push(registry, "fraud", {"a.bin": b"one"})
    v2 = await push(registry, "fraud", {"a.bin": b"two"})
    watch = f"/v1/events:watch?model=models/fraud&{ALIAS_MOVES}"
    async with session(registry, ADMIN_TOKEN) as http:
        stream = await http.get(watch)
        assert stream.status == 200
        assert stream.headers["Content-Type"] == "text/event-stream"
        assert stream.headers["Cache-Control"] == "no-store"
        # The response starts once the watch is live, with the id it starts after: a
        # browser that loses the stream before any event resumes from there.
        connected, start = await preamble(stream)
        assert connected == ": connected"
        assert start.startswith("id: ")
        start_id = start.removeprefix("id: ")
        await _move(registry, "production", v1.name)
        (first,) = await next_events(stream, 1)
        stream.close()
        assert first.event == "MODEL_EVENT_TYPE_ALIAS_MOVED"
        event = first.json()
        assert first.id == event["eventId"]
        assert int(first.id) > int(start_id)
        assert (event["model"], event["alias"], event["modelVersion"], event["actor"]) == (
            "models/fraud",
            "models/fraud/aliases/production",
            v1.name,
            "admin",
        )

        # Missed while disconnected: the reconnection gets these, and not the first again.
        await _move(registry, "production", v2.name)
        await _move(registry, "staging", v1.name)
        resumed = await http.get(watch, headers={"Last-Event-ID": first.id})
        assert resumed.status == 200
        assert (await preamble(resumed))[1] == f"id: {first.id}"
        later = await next_events(resumed, 2)
        resumed.close()
        assert [(e.json()["alias"], e.json()["modelVersion"]) for e in later] == [
            ("models/fraud/aliases/production", v2.name),
            ("models/fraud/aliases/staging", v1.name),
        ]
        assert int(first.id) < int(later[0].id) < int(later[1].id)

        from_start = await http.get(watch, headers={"Last-Event-ID": start_id})
        await preamble(from_start)
        everything = await next_events(from_start, 3)
        from_start.close()
    assert [e.id for e in everything] == [first.id, later[0].id, later[1].id]


async def test_a_watch_the_caller_may_not_see_is_refused_as_status_json(
    registry: RunningRegistry,
) -> None:
    await new_model(registry, "fraud")
    outsider = await create_token(registry.target, "outsider", "viewer", "other")
    async with session(registry, outsider) as http:
        reply = await http.get("/v1/events:watch?model=models/fraud")
        assert reply.status == 403
        assert reply.headers["Content-Type"].startswith("application/json")
        assert error_info(await reply.json())["reason"] == "PERMISSION_DENIED"
    async with session(registry, ADMIN_TOKEN) as http:
        expired = await http.get("/v1/events:watch?model=models/fraud&afterEventId=abc")
        assert expired.status == 400
        assert error_info(await expired.json())["reason"] == "FIELD_INVALID"


async def test_an_idle_watch_gets_heartbeats_and_a_client_that_leaves_ends_it_cleanly(
    registry: RunningRegistry, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(api, "SSE_HEARTBEAT_S", 0.2)
    await new_model(registry, "fraud")
    async with session(registry, ADMIN_TOKEN) as http:
        stream = await http.get("/v1/events:watch?model=models/fraud")
        await preamble(stream)
        heartbeat = await asyncio.wait_for(stream.content.readline(), 10)
        assert heartbeat == b": heartbeat\n"
        stream.close()
        await asyncio.sleep(1.0)  # several heartbeats into a closed connection
        # The server still serves, and logged no failure of the stream it ended.
        assert (await http.get("/v1/models/fraud")).status == 200
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures == [], [r.getMessage() for r in failures]


async def test_stopping_the_http_face_ends_an_open_watch_promptly(
    registry: RunningRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    await new_model(registry, "fraud")
    web = registry.server.web
    assert web is not None
    async with session(registry, ADMIN_TOKEN) as http:
        stream = await http.get("/v1/events:watch?model=models/fraud")
        await preamble(stream)
        await asyncio.wait_for(web.stop(), 10)
        # The stream ends (cut, as a server that goes away cuts it: an EventSource reconnects).
        with contextlib.suppress(aiohttp.ClientPayloadError):
            await asyncio.wait_for(stream.content.read(), 10)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
