"""podman and the modelregistry image, for tests that run containers.

DESIGN.md ("Known pitfalls", Containers): Debian's podman runs on the build machines only with
``--runtime runc``, ``--storage-driver vfs``, ``default_ulimits = []`` and the host network, and
no image registry is reachable. ``deploy/podman/podman.sh`` wraps podman with exactly those
settings (kept in ``deploy/podman/containers.conf``) and storage of its own under
``.tools/podman``, installing Debian's podman, runc and catatonit first if they are missing.
Everything here goes through that wrapper, so tests, ``make image`` and ``podman-compose`` share
one store.

* :func:`ensure_podman` returns the argv prefix that runs podman that way.
* :func:`ensure_image` builds the image (``deploy/image/build.sh``, what ``make image`` runs) if
  it is missing or stale, and returns its name. ``make test`` builds it beforehand, so this is a
  fallback; the build is bounded by its own timeout, not a test's.
* :func:`ensure_health_probe` returns the host's ``grpc_health_probe`` (the image's is the same).
* :func:`podman` runs one podman command and raises with its output on failure.

Plain library code (no pytest import). ``python -m tests.support.podman`` builds the image and
prints its name.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO_ROOT / ".tools"
PODMAN_WRAPPER = REPO_ROOT / "deploy" / "podman" / "podman.sh"
IMAGE_BUILD = REPO_ROOT / "deploy" / "image" / "build.sh"
HEALTH_PROBE_BUILD = REPO_ROOT / "deploy" / "image" / "build-health-probe.sh"

#: The image the tests run; ``make image`` builds the same name unless IMAGE is given.
DEFAULT_IMAGE = "localhost/modelregistry:dev"
#: Environment variable naming another image to test (e.g. one built FROM a public base).
IMAGE_ENV = "MODELREGISTRY_TEST_IMAGE"

# A cold build: the Debian base (~35 s), the Python dependencies from the package index and the
# vfs copies of each layer took about 3 minutes on 2 busy cores; allow plenty on slow CI.
IMAGE_BUILD_TIMEOUT_S = 1800.0
# A cold podman install is a few dozen Debian packages.
INSTALL_TIMEOUT_S = 900.0
COMMAND_TIMEOUT_S = 120.0


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def ensure_podman() -> list[str]:
    """Return the argv prefix that runs podman with this repository's settings.

    The wrapper installs Debian's ``podman`` and ``runc`` (under a lock) when either is missing;
    this calls it once with ``--version`` so that happens here, not inside a later command.

    Returns:
        ``[path of deploy/podman/podman.sh]``; append podman's own arguments.

    Raises:
        RuntimeError: podman is missing and could not be installed; the message says why.
    """
    argv = [str(PODMAN_WRAPPER)]
    try:
        result = subprocess.run(
            [*argv, "--version"],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"podman is not usable: {exc}") from exc
    if result.returncode != 0:
        raise RuntimeError(
            "podman is not usable (deploy/podman/podman.sh installs Debian's podman and runc "
            "as root: apt-get install -y podman runc):\n"
            f"{_tail(result.stderr or result.stdout)}"
        )
    return argv


def podman(
    *args: str, timeout: float = COMMAND_TIMEOUT_S, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``podman args…`` through the wrapper and return the finished process.

    Args:
        *args: podman's arguments, e.g. ``"ps", "-a"``.
        timeout: Seconds before the command is killed (``subprocess.TimeoutExpired``).
        check: Raise if podman exits non-zero.

    Returns:
        The completed process, stdout and stderr as text.

    Raises:
        RuntimeError: ``check`` is set and podman failed; the message has its output.
    """
    result = subprocess.run(
        [*ensure_podman(), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"podman {' '.join(args)} exited with {result.returncode}:\n"
            f"{_tail(result.stderr + result.stdout)}"
        )
    return result


def image_name() -> str:
    """The image under test: ``$MODELREGISTRY_TEST_IMAGE`` or :data:`DEFAULT_IMAGE`."""
    return os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE


def ensure_image(image: str | None = None) -> str:
    """Return the name of the modelregistry image, building it first if missing or stale.

    Runs ``deploy/image/build.sh`` (what ``make image`` runs), which returns at once when an
    image built from the same files exists. Builds hold ``.tools/image.build.lock``, so parallel
    callers build once. An image named by :data:`IMAGE_ENV` is used as it is, never built.

    Args:
        image: Name to build, default :func:`image_name`.

    Returns:
        The image name, for ``podman run``.

    Raises:
        RuntimeError: the build failed; the message ends with its output.
    """
    name = image or image_name()
    if image is None and os.environ.get(IMAGE_ENV):
        podman("image", "exists", name)
        return name
    ensure_podman()
    env = {**os.environ, "IMAGE": name, "PYTHON": sys.executable}
    # build.sh itself holds .tools/image.build.lock while it builds and cleans up.
    result = subprocess.run(
        [str(IMAGE_BUILD)],
        capture_output=True,
        text=True,
        timeout=IMAGE_BUILD_TIMEOUT_S,
        check=False,
        env=env,
        cwd=REPO_ROOT,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"building the image {name} (deploy/image/build.sh, `make image`) failed with "
            f"{result.returncode}:\n{_tail(result.stderr + result.stdout, 60)}"
        )
    return name


def ensure_health_probe() -> Path:
    """Return the path of ``grpc_health_probe`` in ``.tools/bin``, building it if needed.

    Returns:
        The probe built with ``go install`` at the version the image ships.

    Raises:
        RuntimeError: it is missing and could not be built (no Go, no module proxy).
    """
    result = subprocess.run(
        [str(HEALTH_PROBE_BUILD)],
        capture_output=True,
        text=True,
        timeout=IMAGE_BUILD_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            "grpc_health_probe could not be built (deploy/image/build-health-probe.sh, needs Go "
            f"and the Go module proxy):\n{_tail(result.stderr + result.stdout)}"
        )
    return Path(result.stdout.strip().splitlines()[-1])


def ensure_kube_play() -> list[str]:
    """Return the podman argv prefix, with what ``podman kube play`` needs besides podman.

    A pod's infra container runs ``catatonit`` (podman builds its pause image from the host's
    binary, no registry needed), which Debian ships apart from podman; it is installed here,
    under the same lock as the wrapper's install, when missing.

    Raises:
        RuntimeError: podman or catatonit is missing and could not be installed.
    """
    argv = ensure_podman()
    if shutil.which("catatonit") is None:
        TOOLS_DIR.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", "catatonit"]
        with (TOOLS_DIR / "podman.install.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            result = subprocess.run(
                ["sh", "-c", f"{' '.join(install)} || (apt-get update && {' '.join(install)})"],
                capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False, env=env,
            )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(
                "podman kube play needs catatonit (apt-get install -y catatonit), and it could "
                f"not be installed:\n{_tail(result.stderr or result.stdout)}"
            )
    return argv


def remove_containers(names: Sequence[str]) -> None:
    """Force-remove containers by name, ignoring those that do not exist."""
    if names:
        podman("rm", "--force", "--ignore", "--time", "0", *names, check=False)


def main() -> int:
    """Build the image (if needed) and print its name; for ``make`` and CI."""
    try:
        print(ensure_image())
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
