"""Unit tests of the MinIO test-support helpers that need no MinIO (only tmp files)."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from tests.support import minio_build as support
from tests.support.minio import free_port


def test_env_override_binary_is_used_as_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "my-minio"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv(support.MINIO_BIN_ENV, str(fake))

    assert support.ensure_minio_binary() == fake.resolve()
    assert support.minio_binary_is_current()


def test_env_override_pointing_at_missing_path_is_an_error_not_a_rebuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-minio"
    monkeypatch.setenv(support.MINIO_BIN_ENV, str(missing))

    def no_build() -> None:
        raise AssertionError("an explicit binary must not trigger a build")

    monkeypatch.setattr(support, "_build_minio", no_build)

    with pytest.raises(RuntimeError) as excinfo:
        support.ensure_minio_binary()
    message = " ".join(str(excinfo.value).split())  # ignore where the lines wrap
    assert str(missing) in message
    # The message says how to get a binary: the exact go install line, the Go version and
    # proxy it needs, and the override variable.
    assert f"go install {support.MINIO_MODULE}@{support.MINIO_VERSION}" in message
    assert "Go >= 1.24" in message
    assert "Go module proxy" in message
    assert support.MINIO_BIN_ENV in message


def test_env_override_pointing_at_non_executable_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_exec = tmp_path / "minio"
    not_exec.write_text("")
    not_exec.chmod(0o644)
    monkeypatch.setenv(support.MINIO_BIN_ENV, str(not_exec))

    with pytest.raises(RuntimeError, match="not an executable file"):
        support.ensure_minio_binary()


def test_missing_go_gives_install_instructions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Point the tools folder at an empty tmp dir and hide `go`: nothing to use, nothing to build.
    bin_dir = tmp_path / ".tools" / "bin"
    monkeypatch.delenv(support.MINIO_BIN_ENV, raising=False)
    monkeypatch.setattr(support, "TOOLS_BIN", bin_dir)
    monkeypatch.setattr(support, "MINIO_BINARY", bin_dir / "minio")
    monkeypatch.setattr(support, "MINIO_STAMP", bin_dir / "minio.version")
    monkeypatch.setattr(support, "BUILD_LOCK", tmp_path / ".tools" / "minio.build.lock")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))

    with pytest.raises(RuntimeError) as excinfo:
        support.ensure_minio_binary()
    message = str(excinfo.value)
    assert "`go` was not found" in message
    assert f"go install {support.MINIO_MODULE}@{support.MINIO_VERSION}" in message
    assert support.MINIO_BIN_ENV in message


def test_stamped_binary_of_pinned_version_is_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    binary = bin_dir / "minio"
    binary.write_text("")
    binary.chmod(0o755)
    stamp = bin_dir / "minio.version"
    monkeypatch.delenv(support.MINIO_BIN_ENV, raising=False)
    monkeypatch.setattr(support, "MINIO_BINARY", binary)
    monkeypatch.setattr(support, "MINIO_STAMP", stamp)

    stamp.write_text(support.MINIO_VERSION + "\n")
    assert support.minio_binary_is_current()

    # A binary recorded as built from another version needs a rebuild.
    stamp.write_text("v0.0.0-20200101000000-000000000000\n")
    assert not support.minio_binary_is_current()


def test_free_port_returns_a_bindable_loopback_port() -> None:
    port = free_port()

    assert 0 < port < 65536
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
