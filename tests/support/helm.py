"""Helm and the strict manifest validator, for the chart's tests (tests/helm).

``make test`` (through ``make helm``) installs Helm with ``go install`` at :data:`HELM_VERSION`
into ``.tools/bin`` and builds the validator (``deploy/helm/validate``) next to it. Here,
:func:`helm_binary` only checks that the pinned Helm is there (a cold ``go install`` takes
minutes: not something to do under a test's timeout), and :func:`build_validator` rebuilds the
validator from its sources every session (about a second with Go's build cache), so a test never
runs a stale one.

Plain library code (no pytest import).
"""

from __future__ import annotations

import fcntl
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = REPO_ROOT / ".tools" / "bin"
CHART = REPO_ROOT / "deploy" / "helm" / "modelregistry"
EXAMPLES = REPO_ROOT / "deploy" / "helm" / "examples"
VALIDATOR_SOURCE = REPO_ROOT / "deploy" / "helm" / "validate"
#: Keep equal to HELM_VERSION in the Makefile (a test checks it).
HELM_VERSION = "v4.3.2"
HELM = TOOLS_BIN / "helm"
VALIDATOR = TOOLS_BIN / "kube-validate"
#: The custom resources of the examples, accepted untyped by the validator.
EXAMPLE_KINDS = ("postgresql.cnpg.io/v1/Cluster", "minio.min.io/v2/Tenant")
COMMAND_TIMEOUT_S = 60.0
# A validator build with Go's module and build caches warm takes about a second; a cold one
# compiles the Kubernetes API types (under a minute on 2 cores).
BUILD_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Result:
    """What a command printed and how it exited."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout and stderr together (Helm writes its errors to stderr)."""
        return self.stdout + self.stderr


def helm_binary() -> Path:
    """The pinned Helm in ``.tools/bin``.

    Raises:
        RuntimeError: It is missing or another version; the message says how to install it.
    """
    how = f"run `make helm` (go install helm.sh/helm/v4/cmd/helm@{HELM_VERSION} into .tools/bin)"
    if not HELM.exists():
        raise RuntimeError(f"{HELM} is missing: {how}")
    # `helm version` prints only v4.3 for a `go install` build; the module version is exact.
    info = subprocess.run(
        ["go", "version", "-m", str(HELM)],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    if f"helm.sh/helm/v4\t{HELM_VERSION}\t" not in info.stdout:
        raise RuntimeError(f"{HELM} is not Helm {HELM_VERSION}: {how}")
    return HELM


def build_validator() -> Path:
    """Build ``deploy/helm/validate`` into ``.tools/bin/kube-validate`` and return its path.

    Raises:
        RuntimeError: The build failed; the message holds Go's output.
    """
    TOOLS_BIN.mkdir(parents=True, exist_ok=True)
    # One build at a time: parallel sessions would write the same binary.
    with open(TOOLS_BIN.parent / "kube-validate.build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = subprocess.run(
            ["go", "build", "-o", str(VALIDATOR), "."],
            cwd=VALIDATOR_SOURCE,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"building {VALIDATOR_SOURCE} failed:\n{done.stdout}{done.stderr}")
    return VALIDATOR


def _run(argv: list[str], stdin: str | None = None) -> Result:
    done = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
    )
    return Result(done.returncode, done.stdout, done.stderr)


def _value_args(values: list[Path], sets: list[str]) -> list[str]:
    args: list[str] = []
    for path in values:
        args += ["-f", str(path)]
    for assignment in sets:
        args += ["--set", assignment]
    return args


def lint(values: list[Path] | None = None, sets: list[str] | None = None) -> Result:
    """``helm lint --strict`` of the chart with these values files and ``--set`` assignments."""
    return _run(
        [str(helm_binary()), "lint", "--strict", str(CHART), *_value_args(values or [], sets or [])]
    )


def template(
    values: list[Path] | None = None,
    sets: list[str] | None = None,
    release: str = "registry",
    namespace: str = "modelregistry",
) -> Result:
    """``helm template`` of the chart: the rendered manifests on stdout."""
    argv = [str(helm_binary()), "template", release, str(CHART), "--namespace", namespace]
    return _run(argv + _value_args(values or [], sets or []))


def validate(manifests: str, *, allow_kinds: tuple[str, ...] = (), as_json: bool = False) -> Result:
    """Run the strict validator on a multi-document YAML string."""
    argv = [str(VALIDATOR)]
    for kind in allow_kinds:
        argv += ["-allow-kind", kind]
    if as_json:
        argv.append("-json")
    return _run(argv, stdin=manifests)


def decoded(manifests: str) -> list[dict[str, Any]]:
    """The manifests as the validator decoded them (JSON objects), after it found no problem.

    Raises:
        AssertionError: The validator found problems (its report is the message).
    """
    result = validate(manifests, as_json=True)
    assert result.returncode == 0, result.output
    objects: list[dict[str, Any]] = json.loads(result.stdout)
    return objects


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object of this kind and name.

    Raises:
        AssertionError: There is none.
    """
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(
        f"no {kind}/{name} among {[(o['kind'], o['metadata']['name']) for o in objects]}"
    )
