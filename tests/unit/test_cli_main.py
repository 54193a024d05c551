"""``main``: exit codes, one-line errors and ``serve``, with a fake client (no network)."""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any

import pytest

import modelregistry.client
from modelregistry import cli
from modelregistry.errors import (
    InvalidArgumentError,
    NotFoundError,
    RegistryError,
    UnavailableError,
)
from modelregistry.metadata.v1 import model_pb2


class FakeClient:
    token: str | None = None
    """Stands in for ``Client``; ``behaviour`` decides what ``list_models`` does."""

    behaviour: Any = None
    created_with: tuple[Any, ...] = ()
    cache_dir: str | None = None
    tls: tuple[str | None, ...] = ()
    artifact_target: str | None = None

    def __init__(
        self,
        target: str | None = None,
        *,
        timeout: float = 30.0,
        cache_dir: str | None = None,
        token: str | None = None,
        tls_ca: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        artifact_target: str | None = None,
    ) -> None:
        FakeClient.created_with = (target, timeout)
        FakeClient.artifact_target = artifact_target
        FakeClient.token = token
        FakeClient.cache_dir = cache_dir
        FakeClient.tls = (tls_ca, tls_cert, tls_key)

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pass

    def list_models(self, **_: object) -> list[model_pb2.Model]:
        if isinstance(self.behaviour, BaseException):
            raise self.behaviour
        return [model_pb2.Model(name="models/a", owner="me"), model_pb2.Model(name="models/b")]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeClient]:
    monkeypatch.setattr(modelregistry.client, "Client", FakeClient)
    monkeypatch.delenv("MODELREGISTRY_URL", raising=False)
    FakeClient.behaviour = None
    return FakeClient


def test_ls_prints_a_table_or_json(
    fake: type[FakeClient], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["ls"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["NAME", "OWNER"]
    assert [line.split()[0] for line in out[1:]] == ["a", "b"]
    assert cli.main(["--url", "h:9", "ls", "--json", "--timeout", "2"]) == 0
    assert [m["id"] for m in json.loads(capsys.readouterr().out)] == ["a", "b"]
    assert fake.created_with == ("h:9", 2.0)
    assert fake.cache_dir is None
    assert cli.main(["--cache-dir", "/tmp/c", "ls", "-q"]) == 0
    assert fake.cache_dir == "/tmp/c"  # pull and push use the same cache as `cache ls`


def test_url_comes_from_the_environment(
    fake: type[FakeClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELREGISTRY_URL", "env:1")
    assert cli.main(["ls", "-q"]) == 0
    assert fake.created_with[0] == "env:1"


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (NotFoundError("models/x not found"), 3, "error: models/x not found"),
        (InvalidArgumentError("bad\n  filter"), 2, "error: bad filter"),
        (UnavailableError("cannot reach the registry"), 5, "error: cannot reach the registry"),
        (RegistryError("boom"), 1, "error: boom"),
        (KeyboardInterrupt(), 130, "error: interrupted"),
        (
            RuntimeError("oops"),
            1,
            "error: unexpected RuntimeError: oops (run with --debug for the traceback)",
        ),
        (FileNotFoundError(2, "No such file or directory", "card.md"), 1,
         "error: no such file or directory: card.md"),
    ],
)  # fmt: skip
def test_errors_are_one_line_with_the_exit_code(
    fake: type[FakeClient],
    capsys: pytest.CaptureFixture[str],
    error: BaseException,
    code: int,
    line: str,
) -> None:
    fake.behaviour = error
    assert cli.main(["ls"]) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == line + "\n"


def test_debug_adds_the_traceback(
    fake: type[FakeClient], capsys: pytest.CaptureFixture[str]
) -> None:
    fake.behaviour = RuntimeError("oops")
    assert cli.main(["ls", "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.splitlines()[-1] == "error: unexpected RuntimeError: oops"


def test_cli_usage_errors_exit_2(
    fake: type[FakeClient], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["gc", "--grace-period", "soon"]) == 2
    assert capsys.readouterr().err.startswith("error: not a duration: 'soon'")


def test_serve_without_the_server_package(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("shutil.which", lambda *_a, **_k: None)
    assert cli.main(["serve", "--listen", "0.0.0.0:1"]) == 1
    assert capsys.readouterr().err == (
        "error: modelregistry-server is not installed; pip install modelregistry-server\n"
    )


def test_serve_execs_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str]]] = []

    def fake_execv(path: str, argv: list[str]) -> None:
        calls.append((path, argv))
        raise SystemExit(0)

    monkeypatch.setattr("shutil.which", lambda *_a, **_k: "/bin/modelregistry-server")
    monkeypatch.setattr("os.execv", fake_execv)
    with pytest.raises(SystemExit):
        cli.main(["--debug", "serve", "metadata", "--listen", "x:1"])
    assert calls == [
        ("/bin/modelregistry-server", ["/bin/modelregistry-server", "serve", "metadata",
                                       "--listen", "x:1"]),
    ]  # fmt: skip


def test_tls_flags_reach_the_client_before_or_after_the_command(fake: type[FakeClient]) -> None:
    assert (
        cli.main(["--tls-ca", "ca.pem", "ls", "--tls-cert", "me.pem", "--tls-key", "me.key"]) == 0
    )
    assert fake.tls == ("ca.pem", "me.pem", "me.key")


def test_the_artifact_url_reaches_the_client(fake: type[FakeClient]) -> None:
    assert cli.main(["--url", "127.0.0.1:1,127.0.0.1:2", "ls", "--artifact-url", "10.0.0.9:3"]) == 0
    assert fake.created_with[0] == "127.0.0.1:1,127.0.0.1:2"
    assert fake.artifact_target == "10.0.0.9:3"


def test_a_client_certificate_without_its_key_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for variable in ("MODELREGISTRY_TLS_CA", "MODELREGISTRY_TLS_CERT", "MODELREGISTRY_TLS_KEY"):
        monkeypatch.delenv(variable, raising=False)
    assert cli.main(["--tls-cert", "me.pem", "ls"]) == 2
    assert "--tls-cert and --tls-key" in capsys.readouterr().err
