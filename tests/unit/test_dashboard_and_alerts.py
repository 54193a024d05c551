"""The shipped Grafana dashboard and Prometheus alert rules are well formed and current.

The dashboard is generated (deploy/grafana/dashboard.py): the committed JSON must be what the
script makes, pass a JSON schema of the fields Grafana needs (unknown keys refused), and lay
its panels out without overlaps. Every alert rule needs a severity, a summary and a runbook
section that exists in deploy/docs/metrics.md. Whether the metric names they use exist is
checked against a running server in tests/e2e/test_metrics.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import jsonschema

from tests.support.promql import (
    DASHBOARD,
    DASHBOARD_SCHEMA,
    REPO,
    alert_rules,
    dashboard_queries,
    metric_names,
)

GENERATOR = REPO / "deploy" / "grafana" / "dashboard.py"
METRICS_DOC = REPO / "deploy" / "docs" / "metrics.md"


def _dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


def test_the_committed_dashboard_is_what_the_generator_makes() -> None:
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_the_dashboard_passes_its_schema_and_a_misspelled_field_does_not() -> None:
    schema = json.loads(DASHBOARD_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    document = _dashboard()
    assert list(validator.iter_errors(document)) == []
    document["panels"][1]["gridPos"]["wdith"] = 6  # the kind of slip Grafana would ignore
    errors = list(validator.iter_errors(document))
    assert [error.message for error in errors] == [
        "Additional properties are not allowed ('wdith' was unexpected)"
    ]


def test_panels_have_unique_ids_and_do_not_overlap() -> None:
    panels = _dashboard()["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(box["x"], box["x"] + box["w"])
            for y in range(box["y"], box["y"] + box["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_every_dashboard_query_selects_a_metric_with_the_job_and_instance_variables() -> None:
    for panel in _dashboard()["panels"]:
        for target in panel.get("targets", []):
            assert metric_names(target["expr"]), target["expr"]
            assert '$job"' in target["expr"], target["expr"]
            assert '$instance"' in target["expr"], target["expr"]
    assert "target_info" in {n for query in dashboard_queries() for n in metric_names(query)}


def test_metric_names_are_read_from_promql_without_functions_labels_or_keywords() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, rpc_method) (rate(rpc_server_duration_"
        'milliseconds_bucket{rpc_method="Write", job=~"$job"}[5m]))) > 250 and on (job) up == 1'
    )
    assert metric_names(expr) == {"rpc_server_duration_milliseconds_bucket", "up"}


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+\s+(.+)$", markdown, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


def test_every_alert_has_a_severity_a_summary_and_a_runbook_section() -> None:
    rules = alert_rules()
    assert len(rules) >= 8
    anchors = _anchors(METRICS_DOC.read_text())
    names = [str(rule["alert"]) for rule in rules]
    assert len(set(names)) == len(names)
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        labels, notes = rule["labels"], rule["annotations"]
        assert isinstance(labels, dict)
        assert isinstance(notes, dict)
        assert labels["severity"] in {"info", "warning", "critical"}, rule["alert"]
        assert notes["summary"], rule["alert"]
        assert metric_names(str(rule["expr"])), rule["alert"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", str(rule["for"])), rule["alert"]
        page, _, anchor = str(notes["runbook_url"]).partition("#")
        assert page == "deploy/docs/metrics.md", rule["alert"]
        assert anchor == str(rule["alert"]).lower()
        assert anchor in anchors, f"deploy/docs/metrics.md has no section {rule['alert']}"
