"""Helpers of the version and audit pages: links, the audit trail's selection, form parsing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from google.protobuf import struct_pb2

from modelregistry.metadata.v1 import audit_event_pb2
from modelregistry_server.web.ui.audit_page import FilterError, resource_href, utc_timestamp
from modelregistry_server.web.ui.label_lines import FormError, parse_labels
from modelregistry_server.web.ui.version_page import (
    about_version,
    changed_fields,
    file_url,
    version_link,
    web_link,
)

V2 = "models/m/versions/2"
V3 = "models/m/versions/3"


_Snapshot = dict[str, Any] | None


def _event(
    resource: str, before: _Snapshot = None, after: _Snapshot = None
) -> audit_event_pb2.AuditEvent:
    event = audit_event_pb2.AuditEvent(resource=resource)
    if before is not None:
        event.before.CopyFrom(_struct(before))
    if after is not None:
        event.after.CopyFrom(_struct(after))
    return event


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (_event(V2), True),
        (_event(V2 + "/approvals/production"), True),
        (_event("models/m/versions/20"), False),
        (_event("models/m/aliases/prod", after={"version": V2}), True),
        (_event("models/m/aliases/prod", before={"version": V2}, after={"version": V3}), True),
        (_event("models/m/aliases/prod", after={"version": "models/m/versions/22"}), False),
        (_event("models/m", after={"nested": {"list": [V2]}}), True),
    ],
)  # fmt: skip
def test_the_trail_keeps_events_about_the_version(
    event: audit_event_pb2.AuditEvent, expected: bool
) -> None:
    assert about_version(event, V2) is expected


def test_changed_fields_name_short_values_and_versions() -> None:
    event = _event(
        "models/m/aliases/prod",
        before={"version": "models/m/versions/1", "update_time": "a", "note": "x" * 100},
        after={"version": V2, "update_time": "b", "note": "y"},
    )
    assert [(c.field, c.before, c.after) for c in changed_fields(event)] == [
        ("note", "", "y"),
        ("version", "v1", "v2"),
    ]
    assert changed_fields(_event(V2, after={"state": "READY"})) == []
    after = {"state": "READY", "files": 2.0, "labels": {}, "aliases": []}
    commit = _event(V2, before={"state": "PENDING"}, after=after)
    assert [(c.field, c.before, c.after) for c in changed_fields(commit)] == [
        ("files", "", "2"),
        ("state", "PENDING", "READY"),
    ]


@pytest.mark.parametrize(
    ("url", "href"),
    [
        ("https://ci.example/run/1", "https://ci.example/run/1"),
        ("HTTP://x.example", "HTTP://x.example"),
        ("javascript:alert(1)", ""),
        ("data:text/html,x", ""),
        ("s3://bucket/data", ""),
        ("http:alert", ""),
        ("//evil.example", ""),
    ],
)
def test_only_http_addresses_become_links(url: str, href: str) -> None:
    assert web_link(url).href == href
    assert web_link(url).text == url


def test_version_links_and_file_urls() -> None:
    assert version_link("models/a-b/versions/7").href == "/models/a-b/versions/7"
    assert version_link("elsewhere/x").href == ""
    assert file_url("m", 3, "dir/a b#?.bin") == "/v1/models/m/versions/3/files/dir/a%20b%23%3F.bin"


def test_labels_are_key_value_lines() -> None:
    assert parse_labels("a=1\n\n b = two words \nempty=\n") == {
        "a": "1",
        "b": "two words",
        "empty": "",
    }
    for text, message in [
        ("novalue", "Labels, line 1: write each label as key=value, found 'novalue'."),
        ("a=1\n =1", "Labels, line 2: write each label as key=value, found '=1'."),
        ("a=1\n\na=2", "Labels, line 3: the key 'a' is given twice."),
        ("\n".join(f"k{i}=v" for i in range(65)), "At most 64 labels."),
    ]:
        with pytest.raises(FormError) as refused:
            parse_labels(text)
        assert str(refused.value) == message


@pytest.mark.parametrize(
    ("resource", "href"),
    [
        ("models/m", "/models/m"),
        ("models/m/versions/3", "/models/m/versions/3"),
        ("models/m/versions/3/checks/eval", "/models/m/versions/3"),
        ("models/m/aliases/production", "/models/m"),
        ("tokens/abc", ""),
        ("blobs", ""),
        ("models/", ""),
    ],
)
def test_audit_resources_link_to_their_pages(resource: str, href: str) -> None:
    assert resource_href(resource) == href


def test_datetime_local_values_are_utc() -> None:
    stamp = utc_timestamp("2026-12-03T09:25", "From")
    assert stamp is not None
    assert stamp.ToDatetime(tzinfo=dt.UTC) == dt.datetime(2026, 12, 3, 9, 25, tzinfo=dt.UTC)
    assert utc_timestamp("", "From") is None
    with pytest.raises(FilterError):
        utc_timestamp("yesterday", "From")
