"""The CLI against a hostile server: a hostile ``pull`` is one sentence on stderr and a
nonzero exit; control characters in any answer are printed escaped, never raw.

The pull tests use the fake registry of ``test_sdk_hostile_server.py``; the CLI runs
in-process on it. The others use a fake of their own, on a real local gRPC port too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from modelregistry import cli
from modelregistry.access.v1 import access_service_pb2, access_service_pb2_grpc
from modelregistry.errors import EXIT_CONFLICT, EXIT_INTEGRITY
from modelregistry.metadata.v1 import (
    metadata_service_pb2,
    metadata_service_pb2_grpc,
    model_pb2,
    model_version_pb2,
)
from tests.unit.hostile_registry import HostileRegistry, start, tree


@pytest.fixture
def registry() -> Iterator[tuple[HostileRegistry, str]]:
    fake = HostileRegistry()
    server, target = start(fake)
    try:
        yield fake, target
    finally:
        server.stop(None)


def _pull(target: str, root: Path, ref: str = "fraud@production") -> int:
    return cli.main(
        ["--url", target, "--cache-dir", str(root / "cache"), "pull", ref, "--dest",
         str(root / "dest"), "--quiet"]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("path", "shown"),
    [("../evil", "'../evil' must not contain empty, '.' or '..' segments"),
     ("a\nb", "'a\\nb' contains a control character (U+000A)")],
    ids=["traversal", "newline"],
)  # fmt: skip
def test_a_hostile_manifest_is_one_line_and_exit_6(
    registry: tuple[HostileRegistry, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    path: str,
    shown: str,
) -> None:
    fake, target = registry
    fake.serve({"ok.bin": b"ok", path: b"evil"})
    (tmp_path / "dest").mkdir()
    assert _pull(target, tmp_path) == EXIT_INTEGRITY == 6
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1  # one line, no traceback
    assert captured.err.startswith("error: refusing the manifest the registry sent for ")
    assert captured.err.rstrip("\n").endswith(shown)
    assert "nothing was written" in captured.err
    assert set(tree(tmp_path)) <= {"dest", "cache", "cache/cache.lock"}


def test_an_answer_for_another_model_is_one_line_and_exit_6(
    registry: tuple[HostileRegistry, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, target = registry
    fake.serve({"w.bin": b"w"}, name="models/other/versions/1")
    assert _pull(target, tmp_path) == 6
    err = capsys.readouterr().err
    assert err == (
        "error: refusing the registry's answer to 'fraud@production', nothing was written: "
        "'models/other/versions/1' is a version of another model\n"
    )
    assert fake.reads == []


def test_a_symlinked_folder_in_dest_is_one_line_and_exit_4(
    registry: tuple[HostileRegistry, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, target = registry
    fake.serve({"weights/w.bin": b"w"})
    (tmp_path / "dest").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "dest" / "weights").symlink_to(tmp_path / "elsewhere")
    assert _pull(target, tmp_path) == EXIT_CONFLICT == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: refusing to write 'weights/w.bin' under ")
    assert f"is a symbolic link (to {tmp_path / 'elsewhere'})" in err
    assert list((tmp_path / "elsewhere").iterdir()) == []
    assert fake.reads == []


# ------------------------------------------------------------ control characters in answers

# Clear the screen, overwrite the line, ring the bell, the 8-bit CSI: each must reach the
# terminal as visible text, never as a control.
EVIL = "\x1b[2J\r\x07\x9b31m"
SHOWN = "\\x1b[2J\\r\\x07\\x9b31m"


def _raw_controls(text: str, allowed: str = "\n") -> list[str]:
    return [c for c in text if (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F) and c not in allowed]


class _EvilMetadata(metadata_service_pb2_grpc.MetadataServiceServicer):
    """Answers every read with names, labels, paths and people full of control characters."""

    def ListModels(  # noqa: N802 - gRPC method names are PascalCase
        self, request: metadata_service_pb2.ListModelsRequest, context: grpc.ServicerContext
    ) -> metadata_service_pb2.ListModelsResponse:
        model = model_pb2.Model(
            name=f"models/fraud{EVIL}",
            owner=f"mallory{EVIL}",
            labels={f"team{EVIL}": f"risk{EVIL}"},
            description=f"scores{EVIL}",
        )
        return metadata_service_pb2.ListModelsResponse(models=[model])

    def ListModelVersions(  # noqa: N802
        self,
        request: metadata_service_pb2.ListModelVersionsRequest,
        context: grpc.ServicerContext,
    ) -> metadata_service_pb2.ListModelVersionsResponse:
        if request.parent == "models/ghost":
            return metadata_service_pb2.ListModelVersionsResponse()
        return metadata_service_pb2.ListModelVersionsResponse(model_versions=[_evil_version()])

    def ResolveModelVersion(  # noqa: N802
        self,
        request: metadata_service_pb2.ResolveModelVersionRequest,
        context: grpc.ServicerContext,
    ) -> model_version_pb2.ModelVersion:
        return _evil_version()

    def GetModel(  # noqa: N802
        self, request: metadata_service_pb2.GetModelRequest, context: grpc.ServicerContext
    ) -> model_pb2.Model:
        context.abort(grpc.StatusCode.NOT_FOUND, f"no model{EVIL} here")
        raise AssertionError("abort raises")


class _EvilAccess(access_service_pb2_grpc.AccessServiceServicer):
    def WhoAmI(  # noqa: N802
        self, request: access_service_pb2.WhoAmIRequest, context: grpc.ServicerContext
    ) -> access_service_pb2.WhoAmIResponse:
        return access_service_pb2.WhoAmIResponse(
            principal=f"root{EVIL}", authentication_method="token", groups=[f"admins{EVIL}"]
        )


def _evil_version() -> model_version_pb2.ModelVersion:
    version = model_version_pb2.ModelVersion(
        name="models/fraud/versions/1",
        version=1,
        state=model_version_pb2.MODEL_VERSION_STATE_READY,
        created_by=f"mallory{EVIL}",
        aliases=[f"prod{EVIL}"],
        labels={"k": f"v{EVIL}"},
        description=f"# Card\n\tline two{EVIL}",
    )
    version.files.add(path=f"w{EVIL}.bin", sha256="ab" * 32, size_bytes=1)
    return version


@pytest.fixture
def evil_target() -> Iterator[str]:
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    # The RPCs not overridden keep the generated base class's UNIMPLEMENTED answer.
    metadata_service_pb2_grpc.add_MetadataServiceServicer_to_server(
        _EvilMetadata(),  # type: ignore[abstract]
        server,
    )
    access_service_pb2_grpc.add_AccessServiceServicer_to_server(
        _EvilAccess(),  # type: ignore[abstract]
        server,
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["ls"],
         # The DESCRIPTION column is the first line: it ends at the CR.
         [f"fraud{SHOWN}", f"mallory{SHOWN}", f"team{SHOWN}=risk{SHOWN}", "scores\\x1b[2J\n"]),
        (["versions", "fraud"], [f"mallory{SHOWN}", f"prod{SHOWN}"]),
        (["show", "fraud@production"],
         [f"by mallory{SHOWN}", f"prod{SHOWN}", f"k=v{SHOWN}", f"  w{SHOWN}.bin",
          f"description:\n  # Card\n  \tline two{SHOWN}"]),
        (["whoami"], [f"root{SHOWN} (token)", f"groups: admins{SHOWN}"]),
    ],
    ids=["ls-table", "versions-table", "show-key-values", "whoami-plain"],
)  # fmt: skip
def test_control_characters_from_the_server_are_printed_escaped(
    evil_target: str, capsys: pytest.CaptureFixture[str], argv: list[str], expected: list[str]
) -> None:
    assert cli.main(["--url", evil_target, *argv]) == 0
    out = capsys.readouterr().out
    # Only the layout's own line breaks (and the model card's tab) stay raw.
    assert _raw_controls(out, allowed="\n\t") == []
    for text in expected:
        assert text in out


def test_json_output_carries_the_values_exactly_but_no_raw_control(
    evil_target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--url", evil_target, "ls", "--json"]) == 0
    out = capsys.readouterr().out
    assert _raw_controls(out) == []
    assert json.loads(out)[0]["owner"] == f"mallory{EVIL}"  # escaped in the text, not the data


def test_an_error_sentence_from_the_server_is_printed_escaped(
    evil_target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # No versions of "ghost": the CLI asks for the model, and the server's NOT_FOUND sentence
    # is the error line on stderr.
    assert cli.main(["--url", evil_target, "versions", "ghost"]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    # One line: the CR is whitespace (folded into a space), the rest is shown escaped.
    assert captured.err == "error: no model\\x1b[2J \\x07\\x9b31m here\n"
