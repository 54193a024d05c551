"""Named SQL queries loaded from ``.sql`` files a DBA can review.

A file holds blocks introduced by ``-- name: <query_name>`` lines (procrastinate's
``queries.sql`` convention). Queries use ``$n`` parameters only; values are never pasted in.
"""

from __future__ import annotations

import re
from pathlib import Path

_NAME_LINE = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def load_queries(path: Path) -> dict[str, str]:
    """Parse ``path`` into a mapping of query name to SQL text.

    Raises:
        ValueError: A name appears twice, a query has no description (a ``--`` line right
            after its name line), or the file has SQL before the first name line.
    """
    text = path.read_text()
    parts = _NAME_LINE.split(text)
    preamble, rest = parts[0], parts[1:]
    if _strip_comments(preamble):
        raise ValueError(f"{path}: SQL before the first '-- name:' line")
    queries: dict[str, str] = {}
    for name, body in zip(rest[0::2], rest[1::2], strict=True):
        if name in queries:
            raise ValueError(f"{path}: query {name!r} defined twice")
        if not body.strip().startswith("--"):
            # A reviewer reads the file, not the Python: every query says what it is for.
            raise ValueError(f"{path}: query {name!r} has no '-- description' line")
        queries[name] = body.strip()
    return queries


def _strip_comments(sql: str) -> str:
    return "\n".join(
        line for line in sql.splitlines() if line.strip() and not line.strip().startswith("--")
    )
