"""The ports the access use cases depend on."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from modelregistry_server.access.domain.policy import Binding
from modelregistry_server.access.domain.token import TokenRecord
from modelregistry_server.common.kernel.audit import AuditEntry
from modelregistry_server.common.kernel.paging import Cursor


class TokenStore(Protocol):
    """Stores token records (never secrets)."""

    async def insert(self, record: TokenRecord) -> bool:
        """Store a new token, and its audit row (actor ``created_by``) in the same
        transaction; False if one with that id exists already."""
        ...

    async def get(self, token_id: str) -> TokenRecord | None:
        """The token with that id, if any."""
        ...

    async def list(
        self, principal: str | None, active_at: datetime | None, after: Cursor | None, limit: int
    ) -> tuple[list[TokenRecord], Cursor | None]:
        """Tokens newest first (of one principal; only those active at ``active_at``)."""
        ...

    async def revoke(self, token_id: str, when: datetime, actor: str) -> TokenRecord | None:
        """Mark a token revoked, audited as done by ``actor`` in the same transaction (a
        revoked one keeps its first revoke time, and its revocation is not recorded again)."""
        ...

    async def record_use(self, token_id: str, when: datetime) -> None:
        """Remember when a token was last accepted."""
        ...


class BindingStore(Protocol):
    """Stores role bindings."""

    async def insert(self, binding: Binding) -> Binding:
        """Store a binding and its audit row (actor ``created_by``) in one transaction; the
        same subject, role and scope again returns the existing one and records nothing."""
        ...

    async def delete(self, binding_id: str, actor: str) -> Binding | None:
        """Remove a binding, audited as done by ``actor`` in the same transaction; None if
        there was none."""
        ...

    async def all(self) -> list[Binding]:
        """Every binding."""
        ...


class DeniedCallLog(Protocol):
    """Where refused calls are recorded: the registry's audit log."""

    async def record(self, entry: AuditEntry) -> None:
        """Append the record of one refused call."""
        ...


class JwtRejected(Exception):
    """A JWT failed verification.

    Attributes:
        why: What was wrong, in words fit for the caller ("wrong audience"): never the
            token, a claim's value or a key.
        expired: True when the only fault is that the token's ``exp`` has passed.
    """

    def __init__(self, why: str, *, expired: bool = False) -> None:
        super().__init__(why)
        self.why = why
        self.expired = expired


class SigningKeysUnavailable(Exception):
    """The issuer's signing keys could not be loaded, and none are known from before."""


class JwtVerifier(Protocol):
    """Verifies JWTs of the one configured OpenID Connect issuer."""

    async def verify(self, token: str) -> Mapping[str, object]:
        """The claims of ``token`` once its signature (a key of the issuer's JWKS, an allowed
        algorithm) and its ``iss``, ``aud``, ``exp``, ``nbf`` and ``iat`` checked out.

        Raises:
            JwtRejected: The token is malformed, expired, or fails any check.
            SigningKeysUnavailable: No signing keys could be loaded to check it with.
        """
        ...
