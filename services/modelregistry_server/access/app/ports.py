"""The ports the access use cases depend on."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from modelregistry_server.access.domain.policy import Binding
from modelregistry_server.access.domain.token import TokenRecord
from modelregistry_server.common.kernel.paging import Cursor


class TokenStore(Protocol):
    """Stores token records (never secrets)."""

    async def insert(self, record: TokenRecord) -> bool:
        """Store a new token; False if one with that id exists already."""
        ...

    async def get(self, token_id: str) -> TokenRecord | None:
        """The token with that id, if any."""
        ...

    async def list(
        self, principal: str | None, active_at: datetime | None, after: Cursor | None, limit: int
    ) -> tuple[list[TokenRecord], Cursor | None]:
        """Tokens newest first (of one principal; only those active at ``active_at``)."""
        ...

    async def revoke(self, token_id: str, when: datetime) -> TokenRecord | None:
        """Mark a token revoked (a revoked one keeps its first revoke time)."""
        ...

    async def record_use(self, token_id: str, when: datetime) -> None:
        """Remember when a token was last accepted."""
        ...


class BindingStore(Protocol):
    """Stores role bindings."""

    async def insert(self, binding: Binding) -> Binding:
        """Store a binding; the same subject, role and scope again returns the existing one."""
        ...

    async def delete(self, binding_id: str) -> Binding | None:
        """Remove a binding; None if there was none."""
        ...

    async def all(self) -> list[Binding]:
        """Every binding."""
        ...
