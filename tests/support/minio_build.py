"""The pinned MinIO binary: found, or built once with ``go install`` into ``.tools/bin``.

DESIGN.md ("Tests and real dependencies"): integration tests run against a real MinIO, built
with ``go install`` at a pinned version and reused. ``tests.support.minio`` starts it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

MINIO_MODULE = "github.com/minio/minio"
# MinIO publishes no semver tags Go can use (its releases are named RELEASE.<date>), so the Go
# module proxy addresses commits by pseudo-version: v0.0.0-<UTC commit time>-<12-char commit hash>.
# This one is the latest commit on the proxy when it was pinned (2026-02-12, commit 7aac2a2c5b7c).
# Bumping it: `go list -m github.com/minio/minio@latest` prints the newest pseudo-version.
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"

#: Environment variable naming an existing MinIO binary to use instead of building one.
MINIO_BIN_ENV = "MODELREGISTRY_MINIO_BIN"

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO_ROOT / ".tools"
TOOLS_BIN = TOOLS_DIR / "bin"
MINIO_BINARY = TOOLS_BIN / "minio"
# Which version the binary in TOOLS_BIN was built from: `minio --version` of a `go install` build
# says only "DEVELOPMENT.GOGET", so the version has to be recorded beside it.
MINIO_STAMP = TOOLS_BIN / "minio.version"
BUILD_LOCK = TOOLS_DIR / "minio.build.lock"

# A cold build (module download + compile) took ~5 minutes on 2 cores; allow plenty on slow CI.
BUILD_TIMEOUT_S = 1800.0


def install_command() -> str:
    """Return the shell command that builds the pinned MinIO binary into ``.tools/bin``.

    Returns:
        A command line suitable for copying into a terminal.
    """
    return f"GOBIN={TOOLS_BIN} CGO_ENABLED=0 go install {MINIO_MODULE}@{MINIO_VERSION}"


def _install_help(problem: str) -> str:
    """Build the error message telling a developer how to get a MinIO binary."""
    return (
        f"MinIO server binary not available: {problem}\n"
        "Integration tests run against a real MinIO (DESIGN.md, 'Tests and real dependencies').\n"
        "Get one of these ways:\n"
        "  1. Build the pinned version. Needs Go >= 1.24 on PATH and access to the Go module\n"
        "     proxy (GOPROXY, default https://proxy.golang.org); a cold build takes minutes:\n"
        f"       {install_command()}\n"
        "     (or: python -m tests.support.minio, which does the same and records the version)\n"
        f"  2. Point {MINIO_BIN_ENV} at an existing minio server binary:\n"
        f"       export {MINIO_BIN_ENV}=/path/to/minio"
    )


def _is_executable_file(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _read_stamp() -> str | None:
    try:
        return MINIO_STAMP.read_text().strip()
    except FileNotFoundError:
        return None


def _embedded_module_version(binary: Path) -> str | None:
    """Read the MinIO module version Go embedded in ``binary`` (``go version -m``).

    This lets a binary built by hand with the documented ``go install`` line (which writes no
    stamp file) be adopted instead of rebuilt. Returns None if Go or the information is missing.
    """
    go = shutil.which("go")
    if go is None:
        return None
    try:
        out = subprocess.run(
            [go, "version", "-m", str(binary)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0] == "mod" and fields[1] == MINIO_MODULE:
            return fields[2]
    return None


def minio_binary_is_current() -> bool:
    """Tell whether ``.tools/bin/minio`` exists and was built from :data:`MINIO_VERSION`.

    Cheap (reads a stamp file); callers use it to know in advance whether
    :func:`ensure_minio_binary` will have to build.

    Returns:
        True if no build is needed (also when :data:`MINIO_BIN_ENV` names a binary).
    """
    if os.environ.get(MINIO_BIN_ENV):
        return True
    return _is_executable_file(MINIO_BINARY) and _read_stamp() == MINIO_VERSION


def ensure_minio_binary() -> Path:
    """Return the path of a MinIO server binary, building the pinned version if needed.

    Resolution order:

    1. If :data:`MINIO_BIN_ENV` is set, that binary is used as is. A path that does not exist or
       is not executable is an error, not a reason to fall back to building: someone asked for a
       specific binary, and silently testing another one would hide their mistake.
    2. ``.tools/bin/minio`` if its stamp file says it was built from :data:`MINIO_VERSION`.
    3. Otherwise ``go install`` builds it into ``.tools/bin``. The build holds an exclusive lock
       on ``.tools/minio.build.lock`` so concurrent pytest workers and bench scripts build once;
       the others wait and then use the result.

    Returns:
        Absolute path of an executable MinIO binary.

    Raises:
        RuntimeError: the binary is missing and cannot be built (no Go, build failure, timeout),
            or :data:`MINIO_BIN_ENV` names an unusable path. The message says how to get one.
    """
    override = os.environ.get(MINIO_BIN_ENV)
    if override:
        path = Path(override).expanduser()
        if not _is_executable_file(path):
            raise RuntimeError(
                _install_help(f"{MINIO_BIN_ENV}={override} is not an executable file.")
            )
        return path.resolve()

    # Fast path without the lock: the stamp is only written after the binary is in place.
    if minio_binary_is_current():
        return MINIO_BINARY

    TOOLS_BIN.mkdir(parents=True, exist_ok=True)
    with BUILD_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            # Another process may have finished the build while we waited for the lock.
            if minio_binary_is_current():
                return MINIO_BINARY
            if (
                _is_executable_file(MINIO_BINARY)
                and _embedded_module_version(MINIO_BINARY) == MINIO_VERSION
            ):
                MINIO_STAMP.write_text(MINIO_VERSION + "\n")
                return MINIO_BINARY
            _build_minio()
            return MINIO_BINARY
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build_minio() -> None:
    """Run ``go install`` for the pinned version; caller holds the build lock."""
    go = shutil.which("go")
    if go is None:
        raise RuntimeError(_install_help("`go` was not found on PATH, so it cannot be built."))

    # Build into a scratch GOBIN and rename into place, so a reader taking the lock-free fast
    # path never sees a half-written binary. Drop the stamp first for the same reason.
    MINIO_STAMP.unlink(missing_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".minio-build-", dir=TOOLS_BIN))
    try:
        env = dict(os.environ, GOBIN=str(scratch), CGO_ENABLED="0")
        try:
            result = subprocess.run(
                [go, "install", f"{MINIO_MODULE}@{MINIO_VERSION}"],
                # Outside any Go module, so the repository cannot influence the build.
                cwd=scratch,
                env=env,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                _install_help(f"`go install` did not finish within {BUILD_TIMEOUT_S:.0f} s.")
            ) from None
        built = scratch / "minio"
        if result.returncode != 0 or not _is_executable_file(built):
            output = (result.stdout + result.stderr).strip()[-4000:]
            raise RuntimeError(
                _install_help(
                    f"`go install` failed with exit code {result.returncode}:\n{output}\n"
                )
            )
        os.replace(built, MINIO_BINARY)
        MINIO_STAMP.write_text(MINIO_VERSION + "\n")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
