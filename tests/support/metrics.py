"""Reading a registry's Prometheus endpoint in tests: one scrape as a table of samples."""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

# (sample name, its labels) -> value; e.g. ("modelregistry_artifact_received_bytes_total", {}).
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """GET ``url`` (a ``/metrics`` endpoint) and parse every sample in it."""
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a test's own URL
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, labels: Mapping[str, str] | None = None) -> float:
    """The sample ``name`` with exactly ``labels`` (0 when the series does not exist yet)."""
    return samples.get((name, frozenset((labels or {}).items())), 0.0)


def rpc_calls(samples: Samples, service: str, method: str, code: int = 0) -> float:
    """How many ``service``/``method`` calls ended with status ``code``."""
    labels = {
        "rpc_system": "grpc",
        "rpc_service": service,
        "rpc_method": method,
        "rpc_grpc_status_code": str(code),
    }
    return value(samples, "rpc_server_duration_milliseconds_count", labels)


def sample_names(samples: Samples) -> set[str]:
    """Every sample name in a scrape (``_bucket``, ``_count``, ``_sum``, ``_total`` included)."""
    return {name for name, _labels in samples}
