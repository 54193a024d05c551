"""The promotion gate walked through the CLI, as the people and the CI job would run it."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelregistry.access.v1 import access_service_pb2_grpc
from tests.conftest import RunningRegistry
from tests.e2e.test_cli import Cli, write_tree
from tests.support.auth import ADMIN_TOKEN, create_token, grant

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

EXIT_CONFLICT = 4  # FAILED_PRECONDITION (modelregistry.errors)


async def test_the_gate_through_the_cli(registry: RunningRegistry, tmp_path: Path) -> None:
    access = access_service_pb2_grpc.AccessServiceStub(registry.channel)
    secrets = {
        name: await create_token(registry.target, name, role=None)
        for name in ("alice", "bob", "ci")
    }
    for name, role in (("alice", "maintainer"), ("bob", "maintainer"), ("ci", "reporter")):
        await grant(access, name, role, "*")
    admin = Cli(registry.target, tmp_path / "admin", ADMIN_TOKEN)
    alice, bob, ci = (
        Cli(registry.target, tmp_path / n, secrets[n]) for n in ("alice", "bob", "ci")
    )

    write_tree(tmp_path / "v1", {"w.bin": b"one"})
    write_tree(tmp_path / "v2", {"w.bin": b"two"})
    await alice.run("push", str(tmp_path / "v1"), "--model", "fraud")
    await admin.run(
        "protect", "fraud", "production", "--require-check", "eval/accuracy", "--approvals", "1"
    )

    blocked = await alice.run("alias", "set", "fraud", "production", "1", check=EXIT_CONFLICT)
    assert "eval/accuracy" in blocked.stderr
    assert "1 more approval" in blocked.stderr

    await ci.run("check", "report", "fraud:1", "eval/accuracy", "PASSED", "--summary", "auc 0.93")
    listed = await alice.json("check", "list", "fraud:1")
    assert [(c["check"], c["status"], c["reporter"]) for c in listed] == [
        ("eval/accuracy", "PASSED", "ci")
    ]
    own = await alice.run("approve", "fraud:1", "--for", "production", check=EXIT_CONFLICT)
    assert "cannot approve" in own.stderr
    await bob.run("approve", "fraud:1", "--for", "production", "--comment", "reviewed")
    await alice.run("alias", "set", "fraud", "production", "1")

    await alice.run("push", str(tmp_path / "v2"), "--model", "fraud")
    await ci.run("check", "report", "fraud:2", "eval/accuracy", "FAILED")
    await bob.run("approve", "fraud:2", "--for", "production")
    again = await alice.run("alias", "set", "fraud", "production", "2", check=EXIT_CONFLICT)
    assert "checks not PASSED: eval/accuracy" in again.stderr
    await ci.run("check", "report", "fraud:2", "eval/accuracy", "PASSED")
    await alice.run("alias", "set", "fraud", "production", "2")

    # Roll back to 1, which held production minutes ago: no new approvals needed.
    await bob.run("approve", "fraud:1", "--for", "production", "--withdraw")
    await alice.run("alias", "set", "fraud", "production", "1")
    shown = await alice.json("show", "fraud@production")
    assert shown["version"] == 1
