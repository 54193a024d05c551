"""Bearer tokens: their format, their rules, and the record the registry keeps of one.

A token's secret is ``mr1_<id>_<key>``: ``id`` (16 hex digits) names the token
(``tokens/<id>``) and is not secret; ``key`` (32 random bytes, URL-safe base64) is. The
registry stores only the SHA-256 of the whole secret and compares in constant time, so a
database dump holds no usable credential and a wrong guess learns nothing from timing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from modelregistry_server.common.kernel.audit import rfc3339
from modelregistry_server.common.kernel.errors import InvalidArgument

TOKEN_NAME_PREFIX = "tokens/"  # noqa: S105 - a resource name prefix
TOKEN_SECRET_PREFIX = "mr1_"  # noqa: S105 - what every secret starts with (a JWT never does)
_SECRET = re.compile(r"mr1_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_TOKEN_ID = re.compile(r"[0-9a-f]{16}")
PRINCIPAL_PATTERN = re.compile(r"[A-Za-z0-9._@:-]{1,128}")
MAX_DESCRIPTION = 256
MIN_TTL = timedelta(minutes=1)
MAX_TTL = timedelta(days=3650)


@dataclass(frozen=True)
class TokenRecord:
    """What the registry keeps of a token (never the secret itself)."""

    token_id: str
    secret_sha256: str
    principal: str
    description: str
    created_by: str
    create_time: datetime
    expire_time: datetime | None
    last_use_time: datetime | None
    revoke_time: datetime | None

    @property
    def name(self) -> str:
        """``tokens/{id}``."""
        return TOKEN_NAME_PREFIX + self.token_id

    def snapshot(self) -> dict[str, object]:
        """The token as the audit log records it: the ``AccessToken`` message's fields, never
        the secret's hash."""
        times = {
            "create_time": self.create_time,
            "expire_time": self.expire_time,
            "revoke_time": self.revoke_time,
        }
        return {
            "name": self.name,
            "principal": self.principal,
            "description": self.description,
            "created_by": self.created_by,
            **{key: rfc3339(when) for key, when in times.items() if when is not None},
        }

    def active(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoke_time is None and (self.expire_time is None or now < self.expire_time)


def new_secret() -> tuple[str, str]:
    """Return a fresh ``(token id, secret)``."""
    token_id = secrets.token_hex(8)
    return token_id, f"mr1_{token_id}_{secrets.token_urlsafe(32)}"


def token_id_of(secret: str) -> str | None:
    """The token id inside a well-formed secret, or None for anything else."""
    match = _SECRET.fullmatch(secret)
    return None if match is None else match.group(1)


def secret_sha256(secret: str) -> str:
    """What the registry stores of a secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, record: TokenRecord) -> bool:
    """Constant-time comparison of a presented secret with the stored hash."""
    return hmac.compare_digest(secret_sha256(secret), record.secret_sha256)


def validate_principal(name: str, field: str = "principal") -> str:
    """A principal name: 1 to 128 letters, digits and ``. _ - @ :``."""
    if not PRINCIPAL_PATTERN.fullmatch(name):
        raise InvalidArgument(
            field, "must be 1 to 128 characters: letters, digits and '.', '_', '-', '@', ':'"
        )
    return name


def validate_description(text: str) -> str:
    """A token's description: at most 256 characters."""
    if len(text) > MAX_DESCRIPTION:
        raise InvalidArgument("description", f"must be at most {MAX_DESCRIPTION} characters")
    return text


def validate_ttl(ttl: timedelta | None) -> timedelta | None:
    """A token's lifetime: unset (never expires) or at least a minute."""
    if ttl is not None and ttl < MIN_TTL:
        raise InvalidArgument("ttl", "must be at least 1 minute, or unset for no expiry")
    # A Duration may say thousands of years, past the calendar's end; unset means "never".
    if ttl is not None and ttl > MAX_TTL:
        raise InvalidArgument("ttl", f"must be at most {MAX_TTL.days} days, or unset for no expiry")
    return ttl


def parse_token_name(name: str, field: str = "name") -> str:
    """The id in ``tokens/{id}``."""
    token_id = name.removeprefix(TOKEN_NAME_PREFIX)
    if not name.startswith(TOKEN_NAME_PREFIX) or not _TOKEN_ID.fullmatch(token_id):
        raise InvalidArgument(field, "must be tokens/<16 hex digits>, as ListAccessTokens shows")
    return token_id
