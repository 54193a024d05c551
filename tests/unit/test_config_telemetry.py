"""Unit tests of the telemetry settings: ``--metrics``, ``--metrics-listen``, ``--otel-exporter``,
and the metrics pieces that need no server (attribute sets, status codes, refusal reasons)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.metrics.export import Histogram

from modelregistry_server.common.config import ConfigError, load_config
from modelregistry_server.common.metrics import CumulativeHistogram
from modelregistry_server.common.rpc.metrics import MethodMetrics, _status
from modelregistry_server.common.telemetry_config import DEFAULT_METRICS_LISTEN
from modelregistry_server.server_metrics import BOUND_REASONS

REPO = Path(__file__).resolve().parents[2]
DATABASE = "--database-url=postgresql://registry@db.internal/registry"


@pytest.mark.parametrize("argv", [["serve"], ["serve", DATABASE]])
def test_metrics_are_off_by_default_embedded_or_not(argv: list[str]) -> None:
    config = load_config(argv, environ={})
    assert config.metrics is None
    assert config.otel_exporter == "none"


def test_prometheus_listens_on_loopback_9464_unless_told_where() -> None:
    config = load_config(["serve", "--metrics=prometheus"], environ={})
    assert config.metrics is not None
    assert config.metrics.exporters == {"prometheus"}
    assert config.metrics.listen == DEFAULT_METRICS_LISTEN == "127.0.0.1:9464"
    moved = load_config(["serve", "--metrics=prometheus", "--metrics-listen=[::1]:0"], environ={})
    assert moved.metrics is not None
    assert moved.metrics.listen == "[::1]:0"


def test_both_exporters_from_the_environment_and_the_flag_wins() -> None:
    env = {"MODELREGISTRY_METRICS": "otlp, Prometheus", "MODELREGISTRY_OTEL_EXPORTER": "otlp"}
    config = load_config(["serve"], environ=env)
    assert config.metrics is not None
    assert config.metrics.exporters == {"otlp", "prometheus"}
    assert config.otel_exporter == "otlp"
    otlp_only = load_config(["serve", "--metrics=otlp"], environ=env)
    assert otlp_only.metrics is not None
    assert otlp_only.metrics.exporters == {"otlp"}
    assert otlp_only.metrics.listen is None  # no endpoint without prometheus
    assert load_config(["serve", "--metrics=none"], environ=env).metrics is None


@pytest.mark.parametrize(
    ("argv", "env", "problem"),
    [
        (["--metrics=statsd"], {}, "--metrics takes prometheus, otlp (comma-separated) or none"),
        (["--metrics-listen=127.0.0.1:9000"], {}, "--metrics-listen applies only with"),
        (["--metrics=prometheus", "--metrics-listen=9464"], {}, "--metrics-listen must be"),
        (["--metrics=prometheus", "--metrics-listen=0.0.0.0:9464"], {}, "not a loopback address"),
        ([], {"MODELREGISTRY_OTEL_EXPORTER": "jaeger"}, "--otel-exporter must be one of"),
    ],
)
def test_bad_telemetry_settings_are_named(
    argv: list[str], env: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        load_config(["serve", *argv], environ=env)


def test_insecure_allows_a_plaintext_metrics_port_on_every_address() -> None:
    argv = ["serve", "--insecure", "--metrics=prometheus", "--metrics-listen=0.0.0.0:9464"]
    config = load_config(argv, environ={})
    assert config.metrics is not None
    assert config.metrics.listen == "0.0.0.0:9464"


def test_a_method_keeps_one_series_per_status_code_and_buckets_are_upper_inclusive() -> None:
    histogram = CumulativeHistogram("rpc.server.duration", "ms", "", (1.0, 10.0))
    method = MethodMetrics("/modelregistry.metadata.v1.MetadataService/Resolve", histogram)
    ok = method.series(0)
    assert ok.attributes == {
        "rpc.system": "grpc",
        "rpc.service": "modelregistry.metadata.v1.MetadataService",
        "rpc.method": "Resolve",
        "rpc.grpc.status_code": 0,
    }
    assert method.series(0) is ok  # made once: nothing is built per call
    for value in (0.5, 1.0, 1.5, 10.0, 11.0):
        ok.record(value)
    method.series(5).record(2.0)
    metric = histogram.metric(now=1)
    assert metric is not None
    assert metric.name == "rpc.server.duration"
    assert isinstance(metric.data, Histogram)
    points = {dict(p.attributes or {})["rpc.grpc.status_code"]: p for p in metric.data.data_points}
    assert points[0].bucket_counts == [2, 2, 1]  # (-inf, 1], (1, 10], (10, +inf)
    assert (points[0].count, points[0].sum, points[0].min, points[0].max) == (5, 24.0, 0.5, 11.0)
    assert points[5].bucket_counts == [0, 1, 0]
    assert CumulativeHistogram("empty", "ms", "", (1.0,)).metric(now=1) is None


class _Context:
    def __init__(self, code: grpc.StatusCode | None) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode | None:
        return self._code


def test_a_call_is_counted_under_the_status_it_ended_with() -> None:
    assert _status(_Context(None), None) == 0
    assert _status(_Context(grpc.StatusCode.NOT_FOUND), grpc.aio.AbortError()) == 5
    assert _status(_Context(None), RuntimeError("bug")) == 2  # gRPC answers UNKNOWN
    assert _status(_Context(None), asyncio.CancelledError()) == 1  # the client went away


def test_every_resource_exhausted_reason_of_the_catalogue_is_reported_from_zero() -> None:
    catalogue: set[str] = set()
    for proto in (REPO / "protos").rglob("error_reason.proto"):
        # Each value is a paragraph: its comment starts with its status code, then NAME = n;.
        for paragraph in proto.read_text().split("\n\n"):
            value = re.search(r"^\s*([A-Z_]+) = \d+;", paragraph, re.MULTILINE)
            if "// `RESOURCE_EXHAUSTED`." in paragraph and value is not None:
                catalogue.add(value.group(1))
    assert catalogue == set(BOUND_REASONS)
