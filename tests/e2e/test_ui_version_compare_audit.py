"""The version, compare and audit log pages against a real server and PostgreSQL: what they
show (files with working download links, params, the sanitised model card, the audit trail,
differences between versions, filtered audit events), the approve and edit actions (CSRF,
permissions, the server's refusal shown as is) and the selection errors of the compare page.
"""

from __future__ import annotations

import hashlib
import html
import re

import aiohttp
import pytest
from google.protobuf import field_mask_pb2

from modelregistry.metadata.v1 import governance_pb2 as gov
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_version_pb2 as mv
from tests.conftest import RunningRegistry
from tests.support.auth import ADMIN_TOKEN, authenticated_channel, create_token
from tests.support.metadata import new_model, push
from tests.support.ui_html import bearer_session, csrf_token, signed_in, table

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

MODEL = "fraud"
CARD = """# Fraud model

Scores **payments**. [Docs](https://docs.example/fraud) [bad](javascript:alert(1))

| split | rows |
|---|---|
| train | 1200 |

<script>alert("card")</script>
<img src=x onerror=alert(2)>
"""
WEIGHTS = b"\x00weights\xff" * 300


def _base(registry: RunningRegistry) -> str:
    assert registry.server.web is not None
    return f"http://127.0.0.1:{registry.server.web.port}"


def _version_page(number: int) -> str:
    return f"/models/{MODEL}/versions/{number}"


async def _get(session: aiohttp.ClientSession, path: str, status: int = 200) -> str:
    async with session.get(path, allow_redirects=False) as response:
        text = await response.text()
        assert response.status == status, text[:3000]
        return text


async def _post(
    session: aiohttp.ClientSession, path: str, data: dict[str, str], status: int = 303
) -> tuple[str, str]:
    """Post a form as the page would (same origin); the answer's body and Location."""
    async with session.post(path, data=data, allow_redirects=False) as response:
        text = await response.text()
        assert response.status == status, text[:3000]
        return text, response.headers.get("Location", "")


def _alerts(page: str) -> list[str]:
    return [
        html.unescape(re.sub(r"<[^>]+>", "", found))
        for found in re.findall(r'<p class="alert" role="alert"[^>]*>(.*?)</p>', page, re.S)
    ]


async def _seed(registry: RunningRegistry, pusher: str | None = None) -> None:
    """``fraud`` v1..v3 whose params, metrics, files and lineage differ; ``staging`` → v2.

    With ``pusher`` (a token), the versions are created by that principal, not by the admin.
    """
    await new_model(registry, MODEL)
    channel = authenticated_channel(registry.target, pusher) if pusher else registry.channel
    as_pusher = RunningRegistry(registry.server, registry.target, channel)
    lineage = mv.Lineage(
        source=mv.SourceCode(repo_url="https://git.example/fraud.git", commit="a" * 40),
        datasets=[mv.DatasetRef(uri="s3://data/train.parquet", digest="sha256:" + "d" * 64)],
        training_run_url="javascript:alert(3)",
        training_run_id="run-17",
    )
    files = [
        {"model.bin": WEIGHTS, "conf/config.json": b'{"a": 1}', "old.txt": b"old"},
        {"model.bin": WEIGHTS + b"more", "conf/config.json": b'{"a": 1}', "new.txt": b"new"},
        {"model.bin": WEIGHTS, "conf/config.json": b'{"a": 2}'},
    ]
    for index, version_files in enumerate(files):
        await push(
            as_pusher,
            MODEL,
            version_files,
            params={
                "lr": mv.ParamValue(double_value=0.1 if index == 0 else 0.05),
                "optimizer": mv.ParamValue(string_value="adam"),
            },
            metrics={"accuracy": 0.9 + index / 100, "loss": 0.3},
            description=CARD,
            lineage=lineage if index < 2 else mv.Lineage(),
        )
    if pusher:
        await channel.close(None)
    await registry.metadata.SetAlias(
        ms.SetAliasRequest(
            model=f"models/{MODEL}", alias="staging", version=f"models/{MODEL}/versions/2"
        )
    )


async def test_version_page_shows_files_with_download_links_params_and_a_safe_card(
    registry: RunningRegistry,
) -> None:
    await _seed(registry)
    async with bearer_session(_base(registry), ADMIN_TOKEN) as http:
        page = await _get(http, _version_page(1))
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
    await _seed(registry)
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
    async with bearer_session(_base(registry), ADMIN_TOKEN) as http:
        page = await _get(http, _version_page(2))
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
        assert "Compare with previous" not in await _get(http, _version_page(1))
        assert "Not found" in await _get(http, _version_page(9), status=404)


async def test_admin_approves_and_edits_a_version(registry: RunningRegistry) -> None:
    pusher = await create_token(registry.target, "pat-pusher", role="writer")
    await _seed(registry, pusher=pusher)
    async with signed_in(_base(registry), ADMIN_TOKEN) as browser:
        page = await _get(browser, _version_page(2))
        assert 'id="approve-form"' in page
        assert 'id="edit-form"' in page
        token = csrf_token(page)
        _, location = await _post(
            browser,
            _version_page(2) + "/approve",
            {"csrf_token": token, "alias": "production", "comment": "Looks good <b>"},
        )
        assert location == _version_page(2) + "?done=approved#approvals"
        approvals = await registry.metadata.ListApprovals(
            gov.ListApprovalsRequest(parent=f"models/{MODEL}/versions/2")
        )
        assert [(a.alias, a.approver, a.comment) for a in approvals.approvals] == [
            ("production", "admin", "Looks good <b>")
        ]
        page = await _get(browser, location)
        assert "Approval recorded." in page
        assert "Looks good &lt;b&gt;" in page
        etag = re.search(r'name="etag" value="([^"]*)"', page)
        assert etag is not None
        _, location = await _post(
            browser,
            _version_page(2) + "/edit",
            {
                "csrf_token": token,
                "etag": etag.group(1),
                "labels": "team=risk\r\n\r\nstage = prod\r\n",
                "description": "# New card\r\n\r\nBetter.",
            },
        )
        assert location == _version_page(2) + "?done=edited#details"
        version = await registry.metadata.GetModelVersion(
            ms.GetModelVersionRequest(name=f"models/{MODEL}/versions/2")
        )
        assert dict(version.labels) == {"team": "risk", "stage": "prod"}
        assert version.description == "# New card\n\nBetter."
        assert "<h3>New card</h3>" in await _get(browser, location)


async def test_the_servers_refusals_are_shown_as_is_and_change_nothing(
    registry: RunningRegistry,
) -> None:
    await _seed(registry)  # created by the admin: the admin cannot approve them
    async with signed_in(_base(registry), ADMIN_TOKEN) as browser:
        page = await _get(browser, _version_page(3))
        token = csrf_token(page)
        stale = re.search(r'name="etag" value="([^"]*)"', page)
        assert stale is not None
        refused, _ = await _post(
            browser,
            _version_page(3) + "/approve",
            {"csrf_token": token, "alias": "production", "comment": "mine"},
            status=400,
        )
        alert = _alerts(refused)
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
        refused, _ = await _post(
            browser,
            _version_page(3) + "/edit",
            {"csrf_token": token, "etag": stale.group(1), "labels": "a=1", "description": "x"},
            status=409,
        )
        assert "etag" in " ".join(_alerts(refused)).lower()
        assert ">a=1</textarea>" in refused
        # A malformed labels line never reaches the server.
        refused, _ = await _post(
            browser,
            _version_page(3) + "/edit",
            {"csrf_token": token, "etag": "", "labels": "just-a-word", "description": "x"},
            status=400,
        )
        assert _alerts(refused) == ["Labels, line 1: write each label as key=value."]
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
    await _seed(registry, pusher=pusher)
    async with signed_in(_base(registry), ADMIN_TOKEN) as browser:
        for token in (None, "", "forged-token"):
            data = {"alias": "production", "labels": "x=1", "description": "forged"}
            if token is not None:
                data["csrf_token"] = token
            for action in ("approve", "edit"):
                refused, _ = await _post(browser, f"{_version_page(2)}/{action}", data, status=403)
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
    await _seed(registry, pusher=pusher)
    viewer = await create_token(registry.target, "vic-viewer", role="viewer")
    async with signed_in(_base(registry), viewer) as browser:
        page = await _get(browser, _version_page(2))
        assert "Model card" in page
        assert 'id="approve-form"' not in page
        assert 'id="edit-form"' not in page
        assert "/approve" not in page
        assert "/edit" not in page
        # Posting anyway (with the session's own token): the server refuses, as it says.
        token = csrf_token(page)
        refused, _ = await _post(
            browser,
            _version_page(2) + "/approve",
            {"csrf_token": token, "alias": "production"},
            status=403,
        )
        assert any("versions.approve" in alert for alert in _alerts(refused))
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
    await _seed(registry)
    async with bearer_session(_base(registry), ADMIN_TOKEN) as http:
        page = await _get(http, f"/compare?model={MODEL}&v=1&v=2")
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
        page = await _get(http, f"/compare?model={MODEL}&v=1&v=3&v=2")
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
    await _seed(registry)
    async with bearer_session(_base(registry), ADMIN_TOKEN) as http:
        page = await _get(http, f"/compare?model={MODEL}&{query}", status=400)
        assert _alerts(page) == [message]
        assert 'id="cmp-params"' not in page
        assert '<form method="get" action="/compare"' in page
        assert "<b>x</b>" not in page


async def test_compare_of_an_unknown_model_and_the_empty_form(registry: RunningRegistry) -> None:
    async with bearer_session(_base(registry), ADMIN_TOKEN) as http:
        page = await _get(http, "/compare?model=nope&v=1&v=2", status=400)
        assert _alerts(page) == ["There is no model “nope” (or your role does not let you see it)."]
        page = await _get(http, "/compare")
        assert _alerts(page) == []
        assert "Nothing to compare yet" in page
        page = await _get(http, "/compare?model=Bad_Name&v=1&v=2", status=400)
        assert len(_alerts(page)) == 1
