"""Role bindings and the checks every call makes against them.

Bindings are few and read on every call, so the policy keeps all of them in memory and
reloads them every ``RELOAD_INTERVAL`` (a binding changed on another replica applies within
that time; one changed here at once).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime

from modelregistry_server.access.app.ports import BindingStore
from modelregistry_server.access.domain.policy import (
    Binding,
    allows,
    granting,
    holds_anywhere,
    validate_binding,
    visibility,
)
from modelregistry_server.common.kernel.errors import InvalidArgument, NotFound, PermissionDenied
from modelregistry_server.common.kernel.identity import Permission, Principal, Visibility

RELOAD_INTERVAL_S = 5.0
# Distinct (principal, groups, permission) answers kept per snapshot of the bindings; past it
# the cache starts over (a flood of distinct principals costs recomputing, not memory).
_GRANTING_CACHE_MAX = 4096
BINDING_PREFIX = "roleBindings/"
_BINDING_ID = re.compile(r"[0-9a-f]{16}")


class AccessPolicy:
    """Grants and revokes bindings; answers "may this principal do that"."""

    def __init__(
        self,
        store: BindingStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._clock = clock
        self._monotonic = monotonic
        self._bindings: list[Binding] = []
        self._loaded_at: float | None = None
        # Which bindings grant what to whom, per snapshot of _bindings: every call asks, and
        # filtering all bindings each time was most of an authorized call's policy cost.
        self._granting: dict[tuple[str, frozenset[str], Permission], list[Binding]] = {}

    async def refresh(self, *, force: bool = False) -> None:
        """Reload the bindings if they are older than ``RELOAD_INTERVAL_S``."""
        now = self._monotonic()
        if force or self._loaded_at is None or now - self._loaded_at >= RELOAD_INTERVAL_S:
            self._bindings = await self._store.all()
            self._granting = {}
            self._loaded_at = now

    async def refresh_if_older(self, seconds: float) -> bool:
        """Reload the bindings if they are older than ``seconds``; True if it reloaded.

        A denial reloads first (at most this often): a binding just granted on another
        replica then works at once instead of after ``RELOAD_INTERVAL_S``.
        """
        if self._loaded_at is not None and self._monotonic() - self._loaded_at < seconds:
            return False
        await self.refresh(force=True)
        return True

    def allows(self, principal: Principal, permission: Permission, model_id: str | None) -> bool:
        """Whether a binding allows ``permission`` on ``model_id`` (None: registry-wide)."""
        # The domain's rule, over the few bindings already known to grant ``permission``.
        return allows(self._granted(principal, permission), principal, permission, model_id)

    def check(self, principal: Principal, permission: Permission, model_id: str | None) -> None:
        """Raise ``PermissionDenied`` unless a binding allows it."""
        if not self.allows(principal, permission, model_id):
            raise PermissionDenied(permission.value, _resource(model_id))

    def _granted(self, principal: Principal, permission: Permission) -> list[Binding]:
        key = (principal.name, principal.groups, permission)
        found = self._granting.get(key)
        if found is None:
            if len(self._granting) >= _GRANTING_CACHE_MAX:
                self._granting = {}
            found = self._granting[key] = granting(self._bindings, principal, permission)
        return found

    def check_anywhere(self, principal: Principal, permission: Permission) -> None:
        """Raise ``PermissionDenied`` unless some binding grants ``permission`` at all."""
        if not holds_anywhere(self._bindings, principal, permission):
            raise PermissionDenied(permission.value, "any model")

    def visibility(self, principal: Principal, permission: Permission) -> Visibility:
        """The models ``principal`` may see with ``permission``."""
        return visibility(self._bindings, principal, permission)

    async def grant(self, subject: str, role: str, scope: str, actor: Principal) -> Binding:
        """Give ``subject`` ``role`` on ``scope`` (idempotent)."""
        parsed = validate_binding(subject, role, scope)
        binding = Binding(secrets.token_hex(8), subject, parsed, scope, actor.name, self._clock())
        stored = await self._store.insert(binding)
        await self.refresh(force=True)
        return stored

    async def revoke(self, name: str, actor: Principal) -> Binding:
        """Remove the binding ``roleBindings/{id}``."""
        binding_id = name.removeprefix(BINDING_PREFIX)
        if not name.startswith(BINDING_PREFIX) or not _BINDING_ID.fullmatch(binding_id):
            raise InvalidArgument("name", "must be roleBindings/<id>, as ListRoleBindings shows")
        removed = await self._store.delete(binding_id, actor.name)
        await self.refresh(force=True)
        if removed is None:
            raise NotFound("ROLE_BINDING", name)
        return removed

    async def list(self, subject: str) -> list[Binding]:
        """Every binding (of one subject)."""
        await self.refresh(force=True)
        return [b for b in self._bindings if not subject or b.subject == subject]


def _resource(model_id: str | None) -> str:
    return "the registry" if model_id is None else f"models/{model_id}"
