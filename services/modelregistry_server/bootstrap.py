"""The bootstrap admin token: how a fresh registry gets its first credential.

On start the server reads ``<data-dir>/admin-token`` (or ``--admin-token-file``) and accepts
the token in it as principal ``admin``; if the file is missing it creates a token and writes
the file with mode 0600, so that whoever can read the server's data directory can administer
it, and nobody else. The file is the source of truth for that one token: a registry whose
database was reset accepts the same token again.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from modelregistry_server.access.app.policy import AccessPolicy
from modelregistry_server.access.app.tokens import TokenService
from modelregistry_server.common.kernel.identity import Principal

_log = logging.getLogger(__name__)
ADMIN = "admin"
_BOOTSTRAP = Principal("bootstrap", "internal")


async def ensure_admin_token(tokens: TokenService, policy: AccessPolicy, path: Path) -> None:
    """Adopt the admin token in ``path``, or create one and write it there; either way the
    principal ``admin`` holds the admin role on everything.

    Raises:
        RuntimeError: The file holds something else than a token of this registry.
    """
    await policy.grant(ADMIN, "admin", "*", _BOOTSTRAP)
    # Start-up only, before any call is served: blocking file I/O stalls nobody.
    if path.exists():  # noqa: ASYNC240
        secret = path.read_text().strip()  # noqa: ASYNC240
        try:
            await tokens.adopt(secret, ADMIN, "bootstrap admin token")
        except ValueError as exc:
            raise RuntimeError(f"{path}: {exc}; remove the file to have a new one made") from exc
        _log.info("admin token: %s", path)
        return
    _, secret = await tokens.create(ADMIN, "bootstrap admin token", None, _BOOTSTRAP)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL + 0600: never readable by others, never overwriting a file made meanwhile.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secret + "\n")
    except OSError as exc:
        _log.warning("could not write the admin token to %s (%s); create tokens with an "
                     "existing admin token instead", path, exc.strerror)  # fmt: skip
        return
    _log.warning("created an admin token and wrote it to %s (mode 0600); use it with "
                 "`modelregistry login --token-file %s`", path, path)  # fmt: skip
