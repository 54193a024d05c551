"""Generate the Python protobuf and gRPC modules of the client from ``protos/``.

Why this script exists: the generated modules are committed under ``clients/python/src`` so that
the client distribution installs with nothing but grpcio and protobuf (no protoc at install
time). This script is the only way they are produced, with the tool versions pinned in the
root ``pyproject.toml``; ``--check`` lets ``make lint`` fail when a ``.proto`` changed without
regeneration, or when generated code was edited by hand.

The proto package root is the Python import root (``package modelregistry.metadata.v1;``
becomes ``modelregistry.metadata.v1``), so protoc's output is used as it is: no import
rewriting. The directories ``modelregistry/<api>/`` under ``clients/python/src`` belong to this
script: any file in them that a fresh generation does not produce is deleted. The hand-written
``modelregistry/__init__.py`` is never touched.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
PROTO_ROOT = REPO_ROOT / "protos"
OUT_ROOT = REPO_ROOT / "clients" / "python" / "src"
PACKAGE = "modelregistry"
# The APIs under protos/modelregistry/; each gets a generator-owned modelregistry/<api>/ package.
APIS = ("metadata", "artifact", "access")
# The generator tools whose versions decide the output; their pins live in pyproject.toml.
PINNED_TOOLS = ("grpcio-tools", "mypy-protobuf")
PLUGINS = ("protoc-gen-mypy", "protoc-gen-mypy_grpc")

_SERVICE_RE = re.compile(r"^\s*service\s+\w+\s*\{", re.MULTILINE)


class GenerationError(Exception):
    """A precondition of generation failed; the message says how to fix it."""


@dataclass(frozen=True)
class Difference:
    """How committed generated code differs from a fresh generation.

    Attributes:
        changed: Files whose committed content differs.
        missing: Files a fresh generation produces that are not committed.
        stale: Committed files that a fresh generation does not produce.
    """

    changed: tuple[str, ...]
    missing: tuple[str, ...]
    stale: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.changed or self.missing or self.stale)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def check_tool_versions() -> None:
    """Fails unless the installed generator tools match the pins in ``pyproject.toml``.

    Raises:
        GenerationError: A tool is missing, unpinned, or installed at another version.
    """
    with (REPO_ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f).get("project", {})
    pins: dict[str, str] = {}
    for requirement in project.get("optional-dependencies", {}).get("dev", []):
        name, sep, version = str(requirement).split(";", 1)[0].partition("==")
        if sep:
            pins[_normalize(name.strip())] = version.strip()
    problems: list[str] = []
    for tool in PINNED_TOOLS:
        pinned = pins.get(tool)
        try:
            installed = importlib.metadata.version(tool)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if pinned is None:
            problems.append(f"{tool} is not pinned (==) in the dev extra of pyproject.toml")
        elif installed != pinned:
            problems.append(f"{tool}: installed {installed or 'nothing'}, pinned {pinned}")
    if problems:
        raise GenerationError(
            "generator tools do not match their pins (run `make venv-dev`):\n  "
            + "\n  ".join(problems)
        )


def _plugin_path(plugin: str) -> Path:
    # Prefer the plugin next to this interpreter, so that an un-activated venv works too.
    candidate = Path(sys.executable).parent / plugin
    if candidate.is_file():
        return candidate
    found = shutil.which(plugin)
    if found is None:
        raise GenerationError(
            f"{plugin} not found (it comes with mypy-protobuf; run `make venv-dev`)"
        )
    return Path(found)


def _proto_files() -> list[Path]:
    files = sorted(PROTO_ROOT.glob(f"{PACKAGE}/**/*.proto"))
    if not files:
        raise GenerationError(f"no .proto files under {PROTO_ROOT / PACKAGE}")
    return files


def generate(out_dir: Path) -> None:
    """Generates the modules of every API into ``out_dir`` (an import root).

    Args:
        out_dir: An empty directory; ``modelregistry/<api>/...`` is created inside it.

    Raises:
        GenerationError: protoc failed or a plugin is missing.
    """
    protos = _proto_files()
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={PROTO_ROOT.relative_to(REPO_ROOT)}",
        *(f"--plugin={plugin}={_plugin_path(plugin)}" for plugin in PLUGINS),
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *(str(p.relative_to(REPO_ROOT)) for p in protos),
    ]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise GenerationError(f"protoc failed (exit {result.returncode}):\n{result.stderr}")

    # grpc_tools writes a *_pb2_grpc module for every file, even those without a service.
    for proto in protos:
        if not _SERVICE_RE.search(proto.read_text(encoding="utf-8")):
            stem = proto.relative_to(PROTO_ROOT).with_suffix("")
            for suffix in (".py", ".pyi"):
                (out_dir / f"{stem}_pb2_grpc{suffix}").unlink(missing_ok=True)

    # protoc writes no __init__.py; the packages are regular ones, and modelregistry/ itself is
    # hand-written, so only the directories below it get an empty one.
    for api in APIS:
        api_root = out_dir / PACKAGE / api
        if not api_root.is_dir():
            raise GenerationError(f"protoc produced nothing for {PACKAGE}.{api}")
        for directory in (api_root, *(d for d in api_root.rglob("*") if d.is_dir())):
            (directory / "__init__.py").write_bytes(b"")


def _generated_files(root: Path) -> dict[str, bytes]:
    """Returns the generator-owned files under ``root`` by path relative to it."""
    files: dict[str, bytes] = {}
    for api in APIS:
        api_root = root / PACKAGE / api
        if not api_root.is_dir():
            continue
        for path in api_root.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def compare(fresh: dict[str, bytes], committed: dict[str, bytes]) -> Difference:
    """Compares a fresh generation with the committed files."""
    return Difference(
        changed=tuple(
            sorted(p for p in fresh.keys() & committed.keys() if fresh[p] != committed[p])
        ),
        missing=tuple(sorted(fresh.keys() - committed.keys())),
        stale=tuple(sorted(committed.keys() - fresh.keys())),
    )


def apply(fresh_root: Path, difference: Difference) -> None:
    """Brings ``OUT_ROOT`` in line with a fresh generation in ``fresh_root``."""
    for relative in (*difference.changed, *difference.missing):
        target = OUT_ROOT / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fresh_root / relative, target)
    for relative in difference.stale:
        (OUT_ROOT / relative).unlink()
    # Remove directories that no longer hold generated files (a removed API version, say).
    for api in APIS:
        api_root = OUT_ROOT / PACKAGE / api
        if not api_root.is_dir():
            continue
        for directory in sorted((d for d in api_root.rglob("*") if d.is_dir()), reverse=True):
            if directory.name == "__pycache__" or not directory.exists():
                continue
            if not (fresh_root / directory.relative_to(OUT_ROOT)).is_dir():
                shutil.rmtree(directory)


def _describe(difference: Difference, labels: tuple[str, str, str]) -> str:
    lines: list[str] = []
    for label, paths in zip(
        labels, (difference.changed, difference.missing, difference.stale), strict=True
    ):
        lines.extend(f"  {label}: {OUT_ROOT.relative_to(REPO_ROOT) / p}" for p in paths)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Runs the generator.

    Args:
        argv: Command-line arguments without the program name; ``sys.argv[1:]`` if None.

    Returns:
        The process exit status: 0 on success, 1 if ``--check`` found differences or
        generation failed.
    """
    parser = argparse.ArgumentParser(
        description=(
            "Generate the Python protobuf/gRPC modules and .pyi stubs of the client "
            f"({OUT_ROOT.relative_to(REPO_ROOT)}/{PACKAGE}/{{{','.join(APIS)}}}) "
            f"from {PROTO_ROOT.relative_to(REPO_ROOT)}/."
        ),
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write anything; exit 1 if the committed generated code differs from a "
        "fresh generation (used by `make lint`)",
    )
    args = parser.parse_args(argv)

    try:
        check_tool_versions()
        with tempfile.TemporaryDirectory(prefix="gen_protos-") as temp:
            fresh_root = Path(temp)
            generate(fresh_root)
            fresh = _generated_files(fresh_root)
            difference = compare(fresh, _generated_files(OUT_ROOT))
            if args.check:
                if difference:
                    print(
                        "Generated code is out of date with protos/ (or was edited by hand):\n"
                        f"{_describe(difference, ('changed', 'missing', 'stale'))}\n"
                        "Run `make gen` and commit the result.",
                        file=sys.stderr,
                    )
                    return 1
                print(f"Generated code is up to date ({len(fresh)} files).", file=sys.stderr)
                return 0
            apply(fresh_root, difference)
    except GenerationError as error:
        print(f"gen_protos: {error}", file=sys.stderr)
        return 1

    if difference:
        print(
            "Regenerated code:\n" + _describe(difference, ("updated", "added", "removed")),
            file=sys.stderr,
        )
    else:
        print(f"Generated code was already up to date ({len(fresh)} files).", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
