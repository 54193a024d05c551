"""Import rules import-linter cannot state by name.

import-linter forbids the third-party packages it is told about; these tests check the rules
themselves over the source text: the kernel imports only the standard library (whatever
package might be added to the project later), and no ``domain/`` or ``app/`` module imports
gRPC, asyncpg or MinIO (the issue's ``grep`` criterion, also for imports inside functions).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

SERVER = Path(__file__).resolve().parents[2] / "services" / "modelregistry_server"
KERNEL = SERVER / "common" / "kernel"
INNER_LAYERS = [
    SERVER / svc / layer
    for svc in ("metadata", "artifacts", "access")
    for layer in ("domain", "app")
]
KERNEL_PACKAGE = "modelregistry_server.common.kernel"


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every absolute module a file imports (relative imports name their own package)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def test_the_kernel_imports_only_the_standard_library() -> None:
    files = sorted(KERNEL.rglob("*.py"))
    assert files, KERNEL
    outside = [
        f"{path.relative_to(SERVER)}:{line}: {module}"
        for path in files
        for line, module in _imports(path)
        if module.split(".")[0] not in sys.stdlib_module_names
        and module != KERNEL_PACKAGE
        and not module.startswith(KERNEL_PACKAGE + ".")
    ]
    assert outside == []


def test_domain_and_app_import_no_grpc_asyncpg_or_minio() -> None:
    files = sorted(p for layer in INNER_LAYERS for p in layer.rglob("*.py"))
    assert len(files) > 10
    found = [
        f"{path.relative_to(SERVER)}:{line}: {module}"
        for path in files
        for line, module in _imports(path)
        if module.split(".")[0] in {"grpc", "asyncpg", "minio"}
    ]
    assert found == []
