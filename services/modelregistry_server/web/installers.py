"""The parts of the HTTP face that add routes of their own, in the order they are matched."""

from __future__ import annotations

from modelregistry_server.web import files, ui
from modelregistry_server.web.face import RouteInstaller


def installers() -> list[RouteInstaller]:
    """File URLs first (they sit under ``/v1/``), then the UI."""
    return [files.install, ui.install]
