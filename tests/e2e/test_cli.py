"""The ``modelregistry`` CLI as a user runs it: real subprocesses against a real registry.

Every command runs as ``python -m modelregistry.cli`` in a subprocess. The registry fixture's
server runs on this test's event loop, so the subprocesses are awaited in a thread
(``asyncio.to_thread``) and never block it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningRegistry
from tests.support.auth import create_token
from tests.support.files import tree_digests
from tests.support.registry_process import clean_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

MODEL = "cli-demo"


class Cli:
    """Runs the CLI against one registry with an isolated cache and config, as one principal."""

    def __init__(self, target: str, home: Path, token: str | None) -> None:
        self.target = target
        self.env = clean_env()
        self.env["MODELREGISTRY_CACHE"] = str(home / "cache")
        self.env["MODELREGISTRY_CONFIG_DIR"] = str(home / "config")
        if token is not None:
            self.env["MODELREGISTRY_TOKEN"] = token
        self.env["PYTHONUNBUFFERED"] = "1"

    async def run(
        self, *args: str, url: str | None = None, check: int | None = 0
    ) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "modelregistry.cli", "--url", url or self.target, *args]
        result = await asyncio.to_thread(
            subprocess.run, command, capture_output=True, text=True, env=self.env, timeout=90
        )
        if check is not None:
            assert result.returncode == check, (
                f"{args}: exit {result.returncode}\nstdout:\n{result.stdout}\n"
                f"stderr:\n{result.stderr}"
            )
        return result

    async def json(self, *args: str) -> Any:
        result = await self.run(*args, "--json")
        return json.loads(result.stdout)


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


V1_FILES = {
    "config.json": b'{"layers": 4}\n',
    "weights/model.bin": os.urandom(3 * 1024 * 1024 + 17),
    "weights/empty.bin": b"",
    "notes/read me ü.txt": b"unicode and spaces\n",
}


async def test_cli_walkthrough(registry: RunningRegistry, tmp_path: Path) -> None:
    """push, show, versions, alias, pull, diff, log, ls, gc: one story, in stages."""
    cli = Cli(registry.target, tmp_path, await create_token(registry.target, "cli-tester"))
    v1_dir, v2_dir = tmp_path / "v1", tmp_path / "v2"
    write_tree(v1_dir, V1_FILES)
    v2_files = dict(V1_FILES)
    v2_files["config.json"] = b'{"layers": 8}\n'
    v2_files["tokenizer.json"] = b"{}\n"
    del v2_files["notes/read me ü.txt"]
    write_tree(v2_dir, v2_files)

    await _push_two_versions(cli, v1_dir, v2_dir)
    await _list_versions_and_set_aliases(cli)
    await _pull_and_diff(cli, tmp_path, v1_dir, v2_dir)
    await _log_ls_gc_and_remove_an_alias(cli)


async def _push_two_versions(cli: Cli, v1_dir: Path, v2_dir: Path) -> None:
    # push, with progress on stderr (a pipe here: plain lines and a summary) and JSON on stdout
    result = await cli.run(
        "push", str(v1_dir), "--model", MODEL,
        "--param", "lr=0.01", "--param", "epochs=3", "--param", "optimizer=adam",
        "--param", "shuffle=true", "--metric", "auc=0.91", "--label", "team=risk",
        "--description", "first cut", "--json",
    )  # fmt: skip
    pushed = json.loads(result.stdout)
    assert pushed["version"] == 1
    assert pushed["state"] == "READY"
    assert pushed["params"] == {"lr": 0.01, "epochs": 3, "optimizer": "adam", "shuffle": True}
    assert pushed["metrics"] == {"auc": 0.91}
    assert pushed["labels"] == {"team": "risk"}
    assert re.search(r"^pushed \d+ files?, [\d.]+ (B|KiB|MiB) in [\d.]+ s", result.stderr, re.M), (
        result.stderr
    )
    assert "%" in result.stderr  # at least one progress line before the summary

    # show: human and JSON
    shown = await cli.run("show", MODEL)
    assert "READY" in shown.stdout
    assert "weights/model.bin" in shown.stdout
    assert "lr=0.01" in shown.stdout
    version = await cli.json("show", f"{MODEL}:1")
    assert {f["path"] for f in version["files"]} == set(V1_FILES)
    assert version["description"] == "first cut"

    # a second version; --quiet keeps stderr empty, and the plain output is the new ref
    result = await cli.run(
        "push", str(v2_dir), "--model", MODEL, "--param", "lr=0.02", "--param", "epochs=3",
        "--metric", "auc=0.95", "--alias", "staging", "--quiet",
    )  # fmt: skip
    assert result.stdout.strip() == f"{MODEL}:2"
    assert result.stderr == ""


async def _list_versions_and_set_aliases(cli: Cli) -> None:
    # versions
    listed = await cli.json("versions", MODEL)
    assert sorted(v["version"] for v in listed) == [1, 2]
    table = await cli.run("versions", MODEL)
    assert table.stdout.splitlines()[0].split()[:2] == ["VERSION", "STATE"]
    best = await cli.json("versions", MODEL, "--order-by", "metrics.auc desc", "--limit", "1")
    assert [v["version"] for v in best] == [2]

    # alias set / ls
    alias = await cli.json("alias", "set", MODEL, "production", "1")
    assert alias["alias"] == "production"
    assert alias["version"] == 1
    aliases = await cli.json("alias", "ls", MODEL)
    assert {a["alias"]: a["version"] for a in aliases} == {"production": 1, "staging": 2}


async def _pull_and_diff(cli: Cli, tmp_path: Path, v1_dir: Path, v2_dir: Path) -> None:
    # pull name@alias into a folder: the tree is identical, by sha256
    dest = tmp_path / "pulled"
    result = await cli.run("pull", f"{MODEL}@production", "--dest", str(dest))
    assert Path(result.stdout.strip()) == dest
    assert tree_digests(dest) == tree_digests(v1_dir)
    assert re.search(r"^pulled \d+ files?, ", result.stderr, re.M), result.stderr
    # into the cache, as JSON; the blobs v1 shares with v2 are not downloaded again
    pulled = await cli.json("pull", f"{MODEL}@staging")
    assert tree_digests(Path(pulled["path"])) == tree_digests(v2_dir)
    again = await cli.run("pull", f"{MODEL}@staging")
    assert "downloaded nothing" in again.stderr

    # diff
    diff = await cli.json("diff", f"{MODEL}@production", f"{MODEL}@staging")
    assert diff["params"]["lr"] == {"old": 0.01, "new": 0.02}
    assert diff["params"]["optimizer"] == {"old": "adam", "new": None}
    assert diff["metrics"]["auc"] == {"old": 0.91, "new": 0.95}
    assert diff["files_added"] == ["tokenizer.json"]
    assert diff["files_removed"] == ["notes/read me ü.txt"]
    assert diff["files_changed"] == ["config.json"]
    assert diff["files_unchanged"] == 2
    human = await cli.run("diff", f"{MODEL}:1", f"{MODEL}:2")
    assert "+ tokenizer.json" in human.stdout
    assert "lr" in human.stdout


async def _log_ls_gc_and_remove_an_alias(cli: Cli) -> None:
    # log: the audit events of this model, by this actor
    events = await cli.json("log", MODEL, "--actor", "cli-tester", "--limit", "100")
    assert events
    assert {e["actor"] for e in events} == {"cli-tester"}
    assert any("SetAlias" in e["method"] for e in events)
    log = await cli.run("log", MODEL, "--since", "2000-01-01", "--limit", "5")
    assert log.stdout.splitlines()[0].split() == ["TIME", "ACTOR", "METHOD", "RESOURCE"]
    assert len(log.stdout.splitlines()) <= 6

    # ls and gc
    models = await cli.json("ls")
    assert [m["id"] for m in models] == [MODEL]
    gc = await cli.json("gc", "--dry-run")
    assert gc["dry_run"] is True
    assert gc["deleted_blob_count"] == 0

    # alias rm
    await cli.run("alias", "rm", MODEL, "staging")
    aliases = await cli.json("alias", "ls", MODEL)
    assert [a["alias"] for a in aliases] == ["production"]


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.stderr
    return lines[0]


async def test_cli_failures(registry: RunningRegistry, tmp_path: Path) -> None:
    cli = Cli(registry.target, tmp_path, await create_token(registry.target, "cli-tester"))

    bad_ref = await cli.run("pull", "bad ref!", check=2)
    assert "bad ref!" in one_error_line(bad_ref)
    assert bad_ref.stdout == ""

    unknown = await cli.run("show", "no-such-model", check=3)
    assert "no-such-model" in one_error_line(unknown)
    unknown_versions = await cli.run("versions", "no-such-model", "--json", check=3)
    one_error_line(unknown_versions)
    assert unknown_versions.stdout == ""

    started = time.monotonic()
    down = await cli.run("ls", url="127.0.0.1:1", check=5)
    assert time.monotonic() - started < 10
    assert "cannot reach the registry" in one_error_line(down)

    # a bad flag value the CLI checks itself is a usage error too
    bad_param = await cli.run("push", str(tmp_path), "--model", MODEL, "--param", "lr", check=2)
    assert "KEY=VALUE" in one_error_line(bad_param)
    bad_since = await cli.run("log", "--since", "yesterday", check=2)
    one_error_line(bad_since)

    # no credential at all: one sentence that says how to log in
    anonymous = Cli(registry.target, tmp_path / "anonymous", None)
    unauthenticated = await anonymous.run("ls", check=7)
    assert "modelregistry login" in one_error_line(unauthenticated)
    # a principal without a role on the model: the permission it lacks
    bystander = Cli(registry.target, tmp_path / "bystander", await create_token(
        registry.target, "bystander", "viewer", "other-model"))  # fmt: skip
    denied = await bystander.run("show", "no-such-model", check=7)
    assert "models.read" in one_error_line(denied)

    # --debug adds the traceback
    debug = await cli.run("show", "no-such-model", "--debug", check=3)
    assert "Traceback" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("error: ")
