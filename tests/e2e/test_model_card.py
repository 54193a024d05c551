"""The model card: a pushed README.md becomes the version's card; the CLI shows it, and the
version filter searches it without regard to case."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import RunningRegistry
from tests.e2e.test_cli import Cli, write_tree
from tests.support.auth import ADMIN_TOKEN

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

CARD = "# Fraud detector\n\nGradient-boosted trees on card transactions.\n"


async def test_a_readme_is_the_card_shown_and_searched(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    cli = Cli(registry.target, tmp_path / "home", ADMIN_TOKEN)
    write_tree(tmp_path / "v1", {"README.md": CARD.encode(), "w": b"1"})
    write_tree(tmp_path / "v2", {"w": b"2"})
    await cli.run("push", str(tmp_path / "v1"), "--model", "fraud")
    await cli.run("push", str(tmp_path / "v2"), "--model", "fraud", "--description", "plain")

    shown = await cli.run("show", "fraud:1", "--card")
    assert shown.stdout.startswith("# Fraud detector\n\nGradient-boosted trees")
    none = await cli.run("show", "fraud:2", "--card")
    assert none.stdout.strip() == "plain"

    found = await cli.json("versions", "fraud", "--filter", 'card = "*GRADIENT-BOOSTED*"')
    assert [v["version"] for v in found] == [1]
    everything = await cli.json("versions", "fraud", "--filter", 'card != "*trees*"')
    assert [v["version"] for v in everything] == [2]
    refused = await cli.run("versions", "fraud", "--filter", 'card > "a"', check=2)
    assert "card" in refused.stderr
