"""Where the SDK and CLI find the caller's token, and where ``modelregistry login`` keeps it.

The order is: an explicit ``token=`` (``--token``), ``$MODELREGISTRY_TOKEN``, then the
credentials file that ``modelregistry login`` wrote for that server address
(``$MODELREGISTRY_CONFIG_DIR/credentials.json``, default ``~/.config/modelregistry``), which is
created with mode 0600 and holds one token per ``host:port``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

ENV_TOKEN = "MODELREGISTRY_TOKEN"  # noqa: S105 - the name of a variable, not a token
ENV_CONFIG_DIR = "MODELREGISTRY_CONFIG_DIR"


def credentials_path() -> Path:
    """The credentials file of this user."""
    configured = os.environ.get(ENV_CONFIG_DIR)
    if configured:
        return Path(configured) / "credentials.json"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "modelregistry" / "credentials.json"


def _read() -> dict[str, str]:
    try:
        data = json.loads(credentials_path().read_text())
    except (OSError, ValueError):
        return {}
    tokens = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(tokens, dict):
        return {}
    return {k: v for k, v in tokens.items() if isinstance(k, str) and isinstance(v, str)}


def find_token(target: str, explicit: str | None = None) -> str | None:
    """The token to present to ``target``: explicit, environment, then the login file."""
    if explicit:
        return explicit.strip()
    from_env = os.environ.get(ENV_TOKEN, "").strip()
    if from_env:
        return from_env
    return _read().get(target)


def save_token(target: str, token: str) -> Path:
    """Remember ``token`` for ``target`` in the credentials file (mode 0600); return its path."""
    tokens = _read()
    tokens[target] = token
    return _write(tokens)


def forget_token(target: str) -> bool:
    """Remove the token saved for ``target``; False if there was none."""
    tokens = _read()
    if target not in tokens:
        return False
    del tokens[target]
    _write(tokens)
    return True


def _write(tokens: dict[str, str]) -> Path:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Written to a private temporary file and renamed: never a moment with other modes.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".credentials.")
    try:
        with os.fdopen(fd, "w") as file:
            json.dump({"tokens": tokens}, file, indent=2, sort_keys=True)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
