"""The PromQL of the shipped dashboard and alert rules, and the metric names it uses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "modelregistry-dashboard.json"
DASHBOARD_SCHEMA = REPO / "deploy" / "grafana" / "dashboard.schema.json"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yaml"
# Series Prometheus makes itself (per scrape target), not the server.
PROMETHEUS_SERIES = frozenset({"up"})
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
     "unless", "offset", "inf", "nan"}
)  # fmt: skip
_STRIP = [
    re.compile(r'"(?:[^"\\]|\\.)*"'),  # strings (label values, legends)
    re.compile(r"\{[^{}]*\}"),  # label matchers
    re.compile(r"\[[^\]]*\]"),  # range selectors
    re.compile(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)"),  # grouping label lists
    re.compile(r"\$\w+"),  # dashboard variables
]
_IDENTIFIER = re.compile(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (functions, keywords and labels left out)."""
    for pattern in _STRIP:
        expr = pattern.sub(" ", expr)
    return {name for name in _IDENTIFIER.findall(expr) if name.lower() not in _KEYWORDS}


def dashboard_queries() -> list[str]:
    """Every panel target's and every query variable's PromQL."""
    document = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for panel in document["panels"] for t in panel.get("targets", [])]
    for variable in document["templating"]["list"]:
        if variable["type"] == "query":
            # label_values(metric{…}, label): the metric is the query's first argument.
            queries.append(re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", variable["definition"]))
    return queries


def alert_rules() -> list[dict[str, object]]:
    """Every rule of every group of the alerts file."""
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def used_metric_names() -> set[str]:
    """Every metric name the dashboard and the alert rules select."""
    exprs = dashboard_queries() + [str(rule["expr"]) for rule in alert_rules()]
    return {name for expr in exprs for name in metric_names(expr)}
