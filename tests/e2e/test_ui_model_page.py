"""The model page (``/models/{model}``) and its actions against a real server and PostgreSQL:
the versions table (chosen columns, server-side sorting and paging, checks, filter errors,
empty states), the alias history, and the forms (CSRF, permissions, the promotion gate's
message as is, stale etags), with output escaped everywhere.
"""

from __future__ import annotations

import html
import re

import aiohttp
import grpc
import markupsafe
import pytest
from google.protobuf import field_mask_pb2

from modelregistry.metadata.v1 import governance_pb2 as gov
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_pb2, model_version_pb2
from tests.conftest import RunningRegistry
from tests.support.auth import ADMIN_TOKEN, create_token
from tests.support.metadata import new_version, push
from tests.support.ui_html import bearer_session, csrf_token, signed_in, table

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

MODEL = "fraud"
PAGE = f"/models/{MODEL}"
HOSTILE = '<script>alert("x")</script>'
# (accuracy, optimizer) of the three READY versions.
READY = [(0.91, "adam"), (0.95, "sgd"), (0.93, "adam")]


def _base(registry: RunningRegistry) -> str:
    assert registry.server.web is not None
    return f"http://127.0.0.1:{registry.server.web.port}"


async def _seed(registry: RunningRegistry, pending: int = 0) -> None:
    """Model ``fraud``: 3 READY versions, then ``pending`` PENDING ones with accuracies."""
    await registry.metadata.CreateModel(
        ms.CreateModelRequest(
            model_id=MODEL,
            model=model_pb2.Model(
                description=f"Scores payments {HOSTILE}", labels={"team": "risk"}
            ),
        )
    )
    for index, (accuracy, optimizer) in enumerate(READY):
        await push(
            registry,
            MODEL,
            {"w.bin": b"weights %d" % index},
            metrics={"accuracy": accuracy, "f1": 0.8},
            params={"optimizer": model_version_pb2.ParamValue(string_value=optimizer)},
        )
    for index in range(pending):
        # Accuracies with ties, so pages must break them by version.
        await new_version(registry, MODEL, metrics={"accuracy": (index * 7 % 10) / 10})


async def _get(session: aiohttp.ClientSession, path: str, status: int = 200) -> str:
    async with session.get(path, allow_redirects=False) as response:
        text = await response.text()
        assert response.status == status, text[:2000]
        return text


async def _aliases(registry: RunningRegistry) -> dict[str, str]:
    listed = await registry.metadata.ListAliases(ms.ListAliasesRequest(parent=f"models/{MODEL}"))
    return {a.name.rsplit("/", 1)[-1]: a.version.rsplit("/", 1)[-1] for a in listed.aliases}


def _alerts(page: str) -> list[str]:
    return [
        html.unescape(re.sub(r"<[^>]+>", "", m))
        for m in re.findall(r'<p class="alert[^"]*" role="alert">(.*?)</p>', page, re.S)
    ]


async def test_versions_show_chosen_columns_sorted_by_the_server(
    registry: RunningRegistry,
) -> None:
    await _seed(registry)
    async with bearer_session(_base(registry), ADMIN_TOKEN) as http:
        page = await _get(
            http, f"{PAGE}?col=metrics.accuracy&col=params.optimizer&sort=metrics.accuracy&dir=desc"
        )
        headers, attrs, rows = table(page, "versions")
        accuracy = headers.index("metric accuracy ▼")
        assert attrs[accuracy].get("aria-sort") == "descending"
        assert "param optimizer" in headers
        assert "metric f1" not in headers
        assert [r[accuracy] for r in rows] == ["0.95", "0.93", "0.91"]
        assert [r[1] for r in rows] == ["v2", "v3", "v1"]
        assert [r[headers.index("param optimizer")] for r in rows] == ["sgd", "adam", "adam"]
        # Params sort on the server too; ties by version in the same direction.
        page = await _get(http, f"{PAGE}?col=params.optimizer&sort=params.optimizer&dir=asc")
        headers, attrs, rows = table(page, "versions")
        assert attrs[headers.index("param optimizer ▲")].get("aria-sort") == "ascending"
        assert [r[1] for r in rows] == ["v1", "v3", "v2"]
        # Without a choice, the metrics seen are the columns; the chooser lists every key.
        headers, _, _ = table(await _get(http, PAGE), "versions")
        assert {"metric accuracy", "metric f1"} <= set(headers)
        assert 'value="params.optimizer"' in page
        # The compare form and the links to version pages use the agreed addresses.
        assert '<form id="compare-form" method="get" action="/compare"' in page
        assert '<input type="hidden" name="model" value="fraud">' in page
        assert 'name="v" value="2" form="compare-form"' in page
        assert f'href="{PAGE}/versions/2"' in page


async def test_pages_of_50_cover_every_version_once_in_order(registry: RunningRegistry) -> None:
    await _seed(registry, pending=57)
    async with bearer_session(_base(registry), ADMIN_TOKEN) as http:
        path = f"{PAGE}?col=metrics.accuracy&sort=metrics.accuracy&dir=asc"
        seen: list[tuple[float, int]] = []
        pages = 0
        while path:
            page = await _get(http, path)
            headers, _, rows = table(page, "versions")
            column = headers.index("metric accuracy ▲")
            seen += [(float(r[column]), int(r[1].split()[0][1:])) for r in rows]
            pages += 1
            found = re.search(r'href="(\?[^"]*)" rel="next"', page)
            path = PAGE + html.unescape(found.group(1)) if found else ""
            assert pages <= 3
    assert pages == 2
    assert len(seen) == 60 == len({v for _, v in seen})
    assert seen == sorted(seen)  # accuracy ascending, ties by version ascending


async def test_filter_errors_and_empty_states(registry: RunningRegistry) -> None:
    await registry.metadata.CreateModel(
        ms.CreateModelRequest(model_id="empty", model=model_pb2.Model())
    )
    await _seed(registry)
    async with bearer_session(_base(registry), ADMIN_TOKEN) as http:
        assert "No versions yet" in await _get(http, "/models/empty")
        page = await _get(http, f"{PAGE}?filter=metrics.accuracy+%3E%3D+0.99")
        assert "No versions match this filter" in page
        page = await _get(http, f"{PAGE}?filter=metrics.accuracy+%3E%3D")
        alert = _alerts(page)[0]
        assert alert.startswith("filter: expected a value after '>='")
        page = await _get(http, f"{PAGE}?filter=metrics.accuracy+%3E%3D+0.92")
        assert [r[1] for r in table(page, "versions")[2]] == ["v3", "v2"]
        await _get(http, "/models/nope", status=404)


async def test_checks_and_alias_history_with_its_as_of_answer(registry: RunningRegistry) -> None:
    await _seed(registry)
    versions = f"models/{MODEL}/versions"
    await registry.metadata.ReportCheck(
        gov.ReportCheckRequest(
            parent=f"{versions}/2",
            check=gov.Check(check_name="eval/auc", status=gov.Check.STATUS_PASSED),
        )
    )
    for number in (1, 2):
        await registry.metadata.SetAlias(
            ms.SetAliasRequest(
                model=f"models/{MODEL}", alias="production", version=f"{versions}/{number}"
            )
        )
    async with bearer_session(_base(registry), ADMIN_TOKEN) as http:
        page = await _get(http, f"{PAGE}?at_alias=production&at_time=2999-01-01T00:00")
        headers, _, rows = table(page, "versions")
        checks = {r[1].split()[0]: r[headers.index("Checks")] for r in rows}
        assert checks == {"v3": "—", "v2": "1 passed", "v1": "—"}
        history = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page.split('id="history"')[1]))
        assert "production moved v1 → v2 by admin" in history
        assert "production set to v1 by admin" in history
        assert re.search(r"<strong>production</strong> pointed at\s+<a [^>]*>v2</a>", page)
        page = await _get(http, f"{PAGE}?at_alias=production&at_time=2000-01-01T00:00")
        assert "not found" in _alerts(page)[0]


async def test_output_is_escaped(registry: RunningRegistry) -> None:
    await _seed(registry)
    await registry.metadata.UpdateModel(
        ms.UpdateModelRequest(
            model=model_pb2.Model(name=f"models/{MODEL}", labels={"note": HOSTILE}),
            update_mask=field_mask_pb2.FieldMask(paths=["labels"]),
        )
    )
    async with bearer_session(_base(registry), ADMIN_TOKEN) as http:
        page = await _get(http, f"{PAGE}?filter={HOSTILE}&at_alias={HOSTILE}&at_time=x")
    assert HOSTILE not in page
    assert "<script>alert" not in page
    escaped = str(markupsafe.escape(HOSTILE))  # as Jinja escapes
    assert f"Scores payments {escaped}" in page
    assert f"note={escaped}" in page
    assert f'value="{escaped}"' in page  # the filter box and the as-of form


async def test_forged_posts_are_refused_and_change_nothing(registry: RunningRegistry) -> None:
    await _seed(registry)
    base = _base(registry)
    async with signed_in(base, ADMIN_TOKEN) as browser:
        page = await _get(browser, PAGE)
        token = csrf_token(page)
        assert f'action="{PAGE}/aliases"' in page
        assert f'action="{PAGE}/edit"' in page
        for form in ({}, {"csrf_token": "forged"}, {"csrf_token": token[:-1]}):
            data = {"alias": "production", "version": "2", **form}
            async with browser.post(f"{PAGE}/aliases", data=data) as refused:
                assert refused.status == 403
                assert "did not carry the security token" in await refused.text()
            edit = {"description": "hacked", "labels": "", **form}
            async with browser.post(f"{PAGE}/edit", data=edit) as refused:
                assert refused.status == 403
        assert await _aliases(registry) == {}
        model = await registry.metadata.GetModel(ms.GetModelRequest(name=f"models/{MODEL}"))
        assert model.description.startswith("Scores payments")
        # With the page's token the same post moves the alias, and the page says so.
        data = {"alias": "production", "version": "2", "csrf_token": token}
        async with browser.post(f"{PAGE}/aliases", data=data, allow_redirects=False) as moved:
            assert moved.status == 303
            assert moved.headers["Location"] == f"{PAGE}?moved=production&to=2"
        assert "Moved production to v2." in await _get(browser, f"{PAGE}?moved=production&to=2")
        assert await _aliases(registry) == {"production": "2"}


async def test_a_viewer_gets_no_forms_and_a_403_when_posting(registry: RunningRegistry) -> None:
    await _seed(registry)
    secret = await create_token(registry.target, "vera", role="viewer", scope=MODEL)
    async with signed_in(_base(registry), secret) as browser:
        page = await _get(browser, PAGE)
        assert "/aliases" not in re.sub(r'href="[^"]*"', "", page)  # no move form
        assert f'action="{PAGE}/edit"' not in page
        assert "Move alias" not in page
        assert table(page, "versions")[2]  # but the versions are there
        data = {"alias": "production", "version": "2", "csrf_token": csrf_token(page)}
        async with browser.post(f"{PAGE}/aliases", data=data) as refused:
            assert refused.status == 403
            assert "aliases.write" in _alerts(await refused.text())[0]
        edit = {"description": "mine now", "labels": "", "csrf_token": data["csrf_token"]}
        async with browser.post(f"{PAGE}/edit", data=edit) as refused:
            assert refused.status == 403
            assert "models.write" in _alerts(await refused.text())[0]
    model = await registry.metadata.GetModel(ms.GetModelRequest(name=f"models/{MODEL}"))
    assert model.description.startswith("Scores payments")
    assert await _aliases(registry) == {}


async def test_the_promotion_gate_message_is_shown_as_is(registry: RunningRegistry) -> None:
    await _seed(registry)
    rule = gov.ProtectionRule(
        name=f"protectionRules/{MODEL}/aliases/production",
        required_checks=["eval/accuracy"],
        required_approvals=1,
    )
    await registry.metadata.SetProtectionRule(gov.SetProtectionRuleRequest(protection_rule=rule))
    with pytest.raises(grpc.aio.AioRpcError) as direct:
        await registry.metadata.SetAlias(
            ms.SetAliasRequest(
                model=f"models/{MODEL}", alias="production", version=f"models/{MODEL}/versions/3"
            )
        )
    message = direct.value.details()
    assert message is not None
    assert "eval/accuracy" in message
    async with signed_in(_base(registry), ADMIN_TOKEN) as browser:
        page = await _get(browser, PAGE)
        data = {"alias": "production", "version": "3", "csrf_token": csrf_token(page)}
        async with browser.post(f"{PAGE}/aliases", data=data) as blocked:
            assert blocked.status == 400
            page = await blocked.text()
    assert _alerts(page) == [message]
    # The alert is in the move form's card, and the form keeps what the user entered.
    card = page.split('id="move"')[1].split("</section>")[0]
    assert str(markupsafe.escape(message)) in card
    assert 'value="production"' in card
    assert '<option value="3" selected>' in card
    assert await _aliases(registry) == {}


async def test_editing_labels_and_description_with_the_etag(registry: RunningRegistry) -> None:
    await _seed(registry)
    async with signed_in(_base(registry), ADMIN_TOKEN) as browser:
        page = await _get(browser, PAGE)
        etag = re.search(r'name="etag" value="([^"]*)"', page)
        assert etag is not None
        form = {
            "csrf_token": csrf_token(page),
            "etag": etag.group(1),
            "description": "Scores card payments.\r\nSecond line.",
            "labels": "team = risk\n\ntier=1\n",
        }
        async with browser.post(f"{PAGE}/edit", data=form, allow_redirects=False) as saved:
            assert saved.status == 303
        model = await registry.metadata.GetModel(ms.GetModelRequest(name=f"models/{MODEL}"))
        assert model.description == "Scores card payments.\nSecond line."
        assert dict(model.labels) == {"team": "risk", "tier": "1"}
        # The same form again carries a stale etag: the registry refuses, the page says why.
        async with browser.post(f"{PAGE}/edit", data=form) as stale:
            assert stale.status == 409
            alerts = _alerts(await stale.text())
        assert "etag" in alerts[0]
        bad = {**form, "etag": model.etag, "labels": "no equals sign"}
        async with browser.post(f"{PAGE}/edit", data=bad) as refused:
            assert refused.status == 400
            assert _alerts(await refused.text()) == [
                "Labels, line 1: write each label as key=value, found 'no equals sign'."
            ]
