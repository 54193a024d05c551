"""Secrets from files: ``MODELREGISTRY_<SETTING>_FILE`` for each setting that holds a secret.

Container platforms hand secrets over as files (compose and Docker secrets under
``/run/secrets``, Kubernetes Secret volumes), and a value in a plain environment variable shows
in ``podman inspect``, ``/proc/<pid>/environ`` and crash reports. For the settings below, the
server reads the value from the file that ``MODELREGISTRY_<SETTING>_FILE`` names, the convention
the official PostgreSQL and MinIO images use. ``--admin-token-file`` is a flag of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from modelregistry_server.common.config import ConfigError

_PREFIX = "MODELREGISTRY_"
#: The settings whose value may come from a file: the database URL holds its password.
SECRET_SETTINGS = (
    "DATABASE_URL",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "ARTIFACT_SERVICE_TOKEN",
    "METADATA_SERVICE_TOKEN",
)
# A secret file is a few hundred bytes; anything much larger is the wrong file.
_MAX_BYTES = 64 * 1024


def with_secret_files(environ: Mapping[str, str]) -> dict[str, str]:
    """Return ``environ`` with each ``MODELREGISTRY_<SETTING>_FILE`` replaced by its file's value.

    The value is the file's text without surrounding whitespace (``echo secret > file`` leaves
    a newline). A flag on the command line still wins over it, as over any variable.

    Args:
        environ: The process environment.

    Returns:
        A copy of ``environ`` in which ``MODELREGISTRY_<SETTING>`` holds each file's value.

    Raises:
        ConfigError: a file is unreadable, empty or too large, or a setting is given both as
            a variable and as a file; one sentence per problem.
    """
    env = dict(environ)
    problems: list[str] = []
    for setting in SECRET_SETTINGS:
        path = env.pop(f"{_PREFIX}{setting}_FILE", "")
        if not path:
            continue
        if env.get(_PREFIX + setting):
            problems.append(
                f"{_PREFIX}{setting} and {_PREFIX}{setting}_FILE are both set: give one"
            )
            continue
        try:
            with Path(path).open("rb") as file:
                raw = file.read(_MAX_BYTES + 1)
        except OSError as exc:
            problems.append(f"{_PREFIX}{setting}_FILE {path} cannot be read: {exc.strerror}")
            continue
        value = raw.decode("utf-8", "replace").strip()
        if len(raw) > _MAX_BYTES or not value:
            problems.append(
                f"{_PREFIX}{setting}_FILE {path} must hold the value (not empty, under 64 KiB)"
            )
            continue
        env[_PREFIX + setting] = value
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))
    return env
