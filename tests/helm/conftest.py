"""Fixtures of the Helm chart's tests: the pinned Helm and a freshly built validator."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import helm


@pytest.fixture(scope="session", autouse=True)
def helm_tools() -> Path:
    """Helm is installed (``make helm``) and the validator is built from its current sources."""
    helm.helm_binary()
    return helm.build_validator()
