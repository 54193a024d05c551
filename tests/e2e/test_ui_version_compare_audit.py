"""The version, compare and audit log pages against a real server and PostgreSQL: what they
show (files with working download links, params, the sanitised model card, the audit trail,
differences between versions, filtered audit events), the approve and edit actions (CSRF,
permissions, the server's refusal shown as is) and the selection errors of the compare page.
"""

from __future__ import annotations

import hashlib
import html
import re
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2

from modelregistry.metadata.v1 import governance_pb2 as gov
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_version_pb2 as mv
from tests.conftest import RunningRegistry
from tests.support.auth import ADMIN_TOKEN, create_token
from tests.support.ui_html import bearer_session, csrf_token, signed_in, table
from tests.support.ui_versions import (
    CARD,
    MODEL,
    WEIGHTS,
    alerts,
    base_url,
    get,
    post,
    seed,
    version_page,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def test_version_page_shows_files_with_download_links_params_and_a_safe_card(
    registry: RunningRegistry,
) -> None:
    await seed(registry)
    async with bearer_session(base_url(registry), ADMIN_TOKEN) as http:
        page = await get(http, version_page(1))
        headers, _, rows = table(page, "files")
        assert headers[:3] == ["Path", "Size", "SHA-256"]
        assert [row[0].split()[0] for row in rows] == ["conf/config.json", "model.bin", "old.txt"]
        assert [row[1] for row in rows] == ["8 B", "2.6 KiB", "3 B"]
        digest = hashlib.sha256(WEIGHTS).hexdigest()
        assert f'<code title="{digest}">{digest[:12]}</code>' in page
        links = re.findall(r'<a href="(/v1/models/fraud/versions/1/files/[^"]+)" download>', page)
        assert links == [
            "/v1/models/fraud/versions/1/files/conf/config.json",
            "/v1/models/fraud/versions/1/files/model.bin",
            "/v1/models/fraud/versions/1/files/old.txt",
        ]
        async with http.get(links[1]) as download:
            assert download.status == 200
            assert hashlib.sha256(await download.read()).hexdigest() == digest
        _, _, params = table(page, "params")
        assert params == [["lr", "0.1"], ["optimizer", "adam"]]
        _, _, metrics = table(page, "metrics")
        assert metrics == [["accuracy", "0.9"], ["loss", "0.3"]]
        # The card: rendered Markdown, its script and raw HTML shown as text, never as elements.
        assert "<strong>payments</strong>" in page
        assert "<td>train</td>" in page
        assert '<a href="https://docs.example/fraud" rel="nofollow noopener">Docs</a>' in page
        assert "&lt;script&gt;alert(&quot;card&quot;)&lt;/script&gt;" in page
        assert "&lt;img src=x onerror=alert(2)&gt;" in page
        assert not re.search(r"<script(?![^>]*\bsrc=\"/static/)", page)
        assert "<img" not in page
        assert 'href="javascript:' not in page.lower()
        # Lineage: the http(s) repository is a link, the javascript: run URL is text.
        assert 'href="https://git.example/fraud.git" rel="noopener nofollow"' in page
        assert "javascript:alert(3)" in page
        assert "run-17" in page
        assert "s3://data/train.parquet" in page


async def test_version_page_lists_this_versions_audit_trail_checks_and_compare_link(
    registry: RunningRegistry,
) -> None:
    await seed(registry)
    await registry.metadata.ReportCheck(
        gov.ReportCheckRequest(
            parent=f"models/{MODEL}/versions/2",
            check=gov.Check(
                check_name="eval/accuracy",
                status=gov.Check.STATUS_PASSED,
                summary="0.91 >= 0.9",
                details_url="https://ci.example/run/1",
            ),
        )
    )
    async with bearer_session(base_url(registry), ADMIN_TOKEN) as http:
        page = await get(http, version_page(2))
        trail = page[page.index('id="trail"') : page.index("</ol>", page.index('id="trail"'))]
        methods = re.findall(r'<span class="strong">(\w+)</span>', trail)
        assert methods == ["ReportCheck", "SetAlias", "CommitModelVersion", "CreateModelVersion"]
        assert "models/fraud/versions/1" not in trail
        assert "models/fraud/versions/3" not in trail
        assert "models/fraud/aliases/staging" in trail
        assert "eval/accuracy" in page
        assert '<a href="https://ci.example/run/1" rel="noopener nofollow">details</a>' in page
        assert 'href="/compare?model=fraud&amp;v=1&amp;v=2">Compare with previous</a>' in page
        assert '<span class="badge alias" title="alias">staging</span>' in page
        # The first version has nobody to compare with; an unknown version is a 404 page.
        assert "Compare with previous" not in await get(http, version_page(1))
        assert "Not found" in await get(http, version_page(9), status=404)


async def test_admin_approves_and_edits_a_version(registry: RunningRegistry) -> None:
    pusher = await create_token(registry.target, "pat-pusher", role="writer")
    await seed(registry, pusher=pusher)
    async with signed_in(base_url(registry), ADMIN_TOKEN) as browser:
        page = await get(browser, version_page(2))
        assert 'id="approve-form"' in page
        assert 'id="edit-form"' in page
        token = csrf_token(page)
        _, location = await post(
            browser,
            version_page(2) + "/approve",
            {"csrf_token": token, "alias": "production", "comment": "Looks good <b>"},
        )
        assert location == version_page(2) + "?done=approved#approvals"
        approvals = await registry.metadata.ListApprovals(
            gov.ListApprovalsRequest(parent=f"models/{MODEL}/versions/2")
        )
        assert [(a.alias, a.approver, a.comment) for a in approvals.approvals] == [
            ("production", "admin", "Looks good <b>")
        ]
        page = await get(browser, location)
        assert "Approval recorded." in page
        assert "Looks good &lt;b&gt;" in page
        etag = re.search(r'name="etag" value="([^"]*)"', page)
        assert etag is not None
        _, location = await post(
            browser,
            version_page(2) + "/edit",
            {
                "csrf_token": token,
                "etag": etag.group(1),
                "labels": "team=risk\r\n\r\nstage = prod\r\n",
                "description": "# New card\r\n\r\nBetter.",
            },
        )
        assert location == version_page(2) + "?done=edited#details"
        version = await registry.metadata.GetModelVersion(
            ms.GetModelVersionRequest(name=f"models/{MODEL}/versions/2")
        )
        assert dict(version.labels) == {"team": "risk", "stage": "prod"}
        assert version.description == "# New card\n\nBetter."
        assert "<h3>New card</h3>" in await get(browser, location)


async def test_the_servers_refusals_are_shown_as_is_and_change_nothing(
    registry: RunningRegistry,
) -> None:
    await seed(registry)  # created by the admin: the admin cannot approve them
    async with signed_in(base_url(registry), ADMIN_TOKEN) as browser:
        page = await get(browser, version_page(3))
        token = csrf_token(page)
        stale = re.search(r'name="etag" value="([^"]*)"', page)
        assert stale is not None
        refused, _ = await post(
            browser,
            version_page(3) + "/approve",
            {"csrf_token": token, "alias": "production", "comment": "mine"},
            status=400,
        )
        alert = alerts(refused)
        assert len(alert) == 1
        assert "who cannot approve it" in alert[0]
        assert 'value="production"' in refused  # what the user typed is kept
        # An etag that moved on: ABORTED, shown as the server says it.
        await registry.metadata.UpdateModelVersion(
            ms.UpdateModelVersionRequest(
                model_version=mv.ModelVersion(
                    name=f"models/{MODEL}/versions/3", labels={"by": "someone-else"}
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["labels"]),
            )
        )
        refused, _ = await post(
            browser,
            version_page(3) + "/edit",
            {"csrf_token": token, "etag": stale.group(1), "labels": "a=1", "description": "x"},
            status=409,
        )
        assert "etag" in " ".join(alerts(refused)).lower()
        assert ">a=1</textarea>" in refused
        # A malformed labels line never reaches the server.
        refused, _ = await post(
            browser,
            version_page(3) + "/edit",
            {"csrf_token": token, "etag": "", "labels": "just-a-word", "description": "x"},
            status=400,
        )
        assert alerts(refused) == [
            "Labels, line 1: write each label as key=value, found 'just-a-word'."
        ]
    version = await registry.metadata.GetModelVersion(
        ms.GetModelVersionRequest(name=f"models/{MODEL}/versions/3")
    )
    assert dict(version.labels) == {"by": "someone-else"}
    assert version.description == CARD
    approvals = await registry.metadata.ListApprovals(
        gov.ListApprovalsRequest(parent=f"models/{MODEL}/versions/3")
    )
    assert list(approvals.approvals) == []


async def test_forged_posts_are_refused_and_change_nothing(registry: RunningRegistry) -> None:
    pusher = await create_token(registry.target, "pat-pusher", role="writer")
    await seed(registry, pusher=pusher)
    async with signed_in(base_url(registry), ADMIN_TOKEN) as browser:
        for token in (None, "", "forged-token"):
            data = {"alias": "production", "labels": "x=1", "description": "forged"}
            if token is not None:
                data["csrf_token"] = token
            for action in ("approve", "edit"):
                refused, _ = await post(browser, f"{version_page(2)}/{action}", data, status=403)
                assert "nothing was changed" in refused
    version = await registry.metadata.GetModelVersion(
        ms.GetModelVersionRequest(name=f"models/{MODEL}/versions/2")
    )
    assert version.description == CARD
    assert dict(version.labels) == {}
    approvals = await registry.metadata.ListApprovals(
        gov.ListApprovalsRequest(parent=f"models/{MODEL}/versions/2")
    )
    assert list(approvals.approvals) == []


async def test_a_viewer_sees_no_forms_and_cannot_post(registry: RunningRegistry) -> None:
    pusher = await create_token(registry.target, "pat-pusher", role="writer")
    await seed(registry, pusher=pusher)
    viewer = await create_token(registry.target, "vic-viewer", role="viewer")
    async with signed_in(base_url(registry), viewer) as browser:
        page = await get(browser, version_page(2))
        assert "Model card" in page
        assert 'id="approve-form"' not in page
        assert 'id="edit-form"' not in page
        assert "/approve" not in page
        assert "/edit" not in page
        # Posting anyway (with the session's own token): the server refuses, as it says.
        token = csrf_token(page)
        refused, _ = await post(
            browser,
            version_page(2) + "/approve",
            {"csrf_token": token, "alias": "production"},
            status=403,
        )
        assert any("versions.approve" in alert for alert in alerts(refused))
    approvals = await registry.metadata.ListApprovals(
        gov.ListApprovalsRequest(parent=f"models/{MODEL}/versions/2")
    )
    assert list(approvals.approvals) == []


def _rows_by_key(page: str, cls: str) -> dict[str, list[str]]:
    """A compare table's rows by their first cell's first word."""
    _, _, rows = table(page, cls)
    return {row[0].split()[0]: row[1:] for row in rows}


def _changed_keys(page: str, table_id: str) -> list[str]:
    """The keys of the rows of a compare table marked changed (class and badge)."""
    start = page.index(f'id="{table_id}"')
    body = page[start : page.index("</table>", start)]
    marked = re.findall(
        r'<tr class="changed"><th scope="row"[^>]*>([^<]+)<span class="badge changed">changed',
        body,
    )
    return [key.strip() for key in marked]


async def test_compare_marks_changed_params_and_files(registry: RunningRegistry) -> None:
    await seed(registry)
    async with bearer_session(base_url(registry), ADMIN_TOKEN) as http:
        page = await get(http, f"/compare?model={MODEL}&v=1&v=2")
        headers, _, _ = table(page, "cmp-params")
        assert headers == ["Param", "v1 baseline", "v2"]
        assert _rows_by_key(page, "cmp-params") == {
            "lr": ["0.1", "0.05"],
            "optimizer": ["adam", "adam"],
        }
        assert _changed_keys(page, "cmp-params") == ["lr"]
        files = _rows_by_key(page, "cmp-files")
        assert files["conf/config.json"][1].startswith("same")
        assert files["model.bin"][1].startswith("changed 2.6 KiB +4 B")
        assert files["new.txt"][0] == "—"
        assert files["new.txt"][1].startswith("added")
        assert files["old.txt"][1] == "removed"
        body = page[page.index('id="cmp-files"') :]
        for path in ("model.bin", "new.txt", "old.txt"):
            assert f'<tr class="changed"><th scope="row" class="mono path">{path}</th>' in body
        assert '<tr><th scope="row" class="mono path">conf/config.json</th>' in body
        # Metrics: a bar per value, scaled per metric, and the difference from the baseline.
        metrics = _rows_by_key(page, "cmp-metrics")
        assert metrics["accuracy"][1].startswith("0.91 +0.01")
        assert _changed_keys(page, "cmp-metrics") == ["accuracy"]
        meters = re.findall(r'<meter min="([^"]+)" max="([^"]+)" value="([^"]+)"', page)
        assert [(float(lo), float(hi), float(v)) for lo, hi, v in meters][:2] == [
            (0.8975, 0.91, 0.9),
            (0.8975, 0.91, 0.91),
        ]
        assert 'aria-label="accuracy of v2: 0.91"' in page
        # Lineage: v3 records none, so commit and datasets differ from the baseline.
        page = await get(http, f"/compare?model={MODEL}&v=1&v=3&v=2")
        assert headers != table(page, "cmp-params")[0]
        assert _changed_keys(page, "cmp-lineage") == [
            "repository",
            "commit",
            "dirty",
            "datasets",
            "training run",
        ]
        assert files != _rows_by_key(page, "cmp-files")
        assert _rows_by_key(page, "cmp-files")["conf/config.json"][1].startswith("changed")
        # The selection is in the address, and the form shows it.
        chosen = re.findall(r'id="cmp-v(\d)" name="v" [^>]*value="(\d*)"', page)
        assert chosen == [("1", "1"), ("2", "3"), ("3", "2"), ("4", "")]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("v=1", "Choose at least 2 different versions to compare (the address names 1)."),
        ("v=1&v=1", "Choose at least 2 different versions to compare (the address names 1)."),
        (
            "v=1&v=2&v=3&v=4&v=5",
            "Compare at most 4 versions at a time (the address names 5): remove some.",
        ),
        ("v=1&v=9", "fraud has no version 9: check the numbers."),
        ("v=7&v=9&v=1", "fraud has no versions 7 and 9: check the numbers."),
        ("v=1&v=<b>x</b>", "“<b>x</b>” is not a version number."),
    ],
)
async def test_compare_selection_errors_are_explained_on_the_page(
    registry: RunningRegistry, query: str, message: str
) -> None:
    await seed(registry)
    async with bearer_session(base_url(registry), ADMIN_TOKEN) as http:
        page = await get(http, f"/compare?model={MODEL}&{query}", status=400)
        assert alerts(page) == [message]
        assert 'id="cmp-params"' not in page
        assert '<form method="get" action="/compare"' in page
        assert "<b>x</b>" not in page


async def test_compare_of_an_unknown_model_and_the_empty_form(registry: RunningRegistry) -> None:
    async with bearer_session(base_url(registry), ADMIN_TOKEN) as http:
        page = await get(http, "/compare?model=nope&v=1&v=2", status=400)
        assert alerts(page) == ["There is no model “nope” (or your role does not let you see it)."]
        page = await get(http, "/compare")
        assert alerts(page) == []
        assert "Nothing to compare yet" in page
        page = await get(http, "/compare?model=Bad_Name&v=1&v=2", status=400)
        assert len(alerts(page)) == 1


async def _move(
    registry: RunningRegistry, alias: str, number: int, token: str = ADMIN_TOKEN
) -> None:
    await registry.metadata.SetAlias(
        ms.SetAliasRequest(
            model=f"models/{MODEL}", alias=alias, version=f"models/{MODEL}/versions/{number}"
        ),
        metadata=(("authorization", f"Bearer {token}"),),
    )


async def test_audit_page_filters_by_method_and_actor(registry: RunningRegistry) -> None:
    await seed(registry)
    bob = await create_token(registry.target, "bob", role="maintainer")
    await _move(registry, "production", 1, bob)
    viewer = await create_token(registry.target, "vic-viewer", role="viewer")
    with pytest.raises(grpc.aio.AioRpcError):
        await _move(registry, "production", 2, viewer)
    async with bearer_session(base_url(registry), ADMIN_TOKEN) as http:
        headers, _, rows = table(await get(http, "/audit?method=SetAlias"), "audit")
        assert headers == ["Time", "Actor", "Method", "Resource", "Outcome", "Request"]
        assert [(r[1], r[2], r[3].split()[0], r[4]) for r in rows] == [
            ("vic-viewer", "SetAlias", "models/fraud", "denied aliases.write"),
            ("bob", "SetAlias", "models/fraud/aliases/production", "done"),
            ("admin", "SetAlias", "models/fraud/aliases/staging", "done"),
        ]
        page = await get(http, "/audit?method=SetAlias&actor=bob")
        _, _, rows = table(page, "audit")
        assert [(r[1], r[3]) for r in rows] == [("bob", "models/fraud/aliases/production")]
        assert '<a href="/models/fraud">models/fraud/aliases/production</a>' in page
        assert 'value="bob"' in page  # the filters stay in the form
        # A refused call is listed with the permission that was missing.
        _, _, rows = table(await get(http, "/audit?actor=vic-viewer"), "audit")
        assert [(r[2], r[4]) for r in rows] == [("SetAlias", "denied aliases.write")]
        # By model and method, versions link to their pages; actor and method link to filters.
        page = await get(http, "/audit?model=models/fraud&method=CommitModelVersion")
        _, _, rows = table(page, "audit")
        assert [r[3][: len("models/fraud/versions/1")] for r in rows] == [
            f"models/fraud/versions/{n}" for n in (3, 2, 1)
        ]
        assert '<a href="/models/fraud/versions/2">models/fraud/versions/2</a>' in page
        assert 'href="?model=fraud&amp;method=CommitModelVersion&amp;actor=admin"' in page


async def test_audit_page_time_range_is_utc_and_bad_filters_are_explained(
    registry: RunningRegistry,
) -> None:
    await seed(registry)
    now = datetime.now(UTC)
    hour_ago = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    in_an_hour = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    async with bearer_session(base_url(registry), ADMIN_TOKEN) as http:
        page = await get(http, "/audit")
        assert "Times are in UTC" in page
        everything = len(table(page, "audit")[2])
        assert everything >= 8
        _, _, rows = table(await get(http, f"/audit?start={hour_ago}&end={in_an_hour}"), "audit")
        assert len(rows) == everything
        page = await get(http, f"/audit?start={in_an_hour}&model=fraud")
        assert table(page, "audit")[2] == []
        assert "No events match these filters" in page
        for query, status, alert in (
            ("method=set_alias", 400, "is not a method name"),
            ("method=SetAlias%27--", 400, "is not a method name"),
            (f"start={in_an_hour}&end={hour_ago}", 400, "To must be later than From."),
            ("start=yesterday", 400, "From: 'yesterday' is not a date and time."),
            ("page=not-a-token", 400, "page_token"),
        ):
            page = await get(http, f"/audit?{query}", status=status)
            assert len(alerts(page)) == 1
            assert alert in alerts(page)[0], alerts(page)
            assert 'id="audit"' not in page


async def test_audit_page_pages_keep_the_filters(registry: RunningRegistry) -> None:
    await seed(registry)
    for index in range(55):
        await _move(registry, "staging", 1 + index % 2)
    async with bearer_session(base_url(registry), ADMIN_TOKEN) as http:
        page = await get(http, "/audit?method=SetAlias")
        _, _, first = table(page, "audit")
        assert len(first) == 50
        following = re.search(
            r'<a class="button" href="\?([^"]+)" rel="next">Older events</a>', page
        )
        assert following is not None
        query = html.unescape(following.group(1))
        assert query.startswith("method=SetAlias&page=")
        page = await get(http, "/audit?" + query)
        _, _, rest = table(page, "audit")
        assert len(rest) == 56 - 50
        assert {r[2] for r in first + rest} == {"SetAlias"}
        assert "Older events" not in page
        assert '<a class="button" href="?method=SetAlias">Newest</a>' in page
