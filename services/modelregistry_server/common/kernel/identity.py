"""Who is calling: the ``Principal`` every layer below the rpc edge works with.

The rpc layer turns a credential into a principal once per call (``common/rpc/auth.py``);
use cases take it as an argument and record ``principal.name`` as the actor. Nothing below
the rpc layer reads credentials or metadata headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

AuthenticationMethod = Literal["token", "oidc", "mtls", "internal"]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    Attributes:
        name: The principal's name: the audit log's actor.
        method: How the call was authenticated: ``token`` (a bearer token of this registry),
            ``oidc`` (a JWT of the configured OpenID Connect issuer), ``mtls`` (a client
            certificate) or ``internal`` (one service of this registry calling another).
        token: The token's resource name (``tokens/{id}``) for token authentication.
        groups: The groups the principal belongs to (from the OIDC groups claim); role
            bindings may name a group instead of a principal.
    """

    name: str
    method: AuthenticationMethod
    token: str = ""
    groups: frozenset[str] = frozenset()


class Permission(StrEnum):
    """What an RPC needs; the table from RPC to permission is ``access/rpc/permissions.py``."""

    READ = "models.read"  # get, list, resolve, watch, audit, pull the bytes
    WRITE = "models.write"  # create models and versions, upload, commit, edit labels
    MANAGE_ALIASES = "aliases.write"  # move and delete aliases (production!)
    DELETE_VERSIONS = "versions.delete"
    DELETE_MODELS = "models.delete"
    ADMINISTER = "registry.admin"  # GC, blobs, tokens, role bindings
    IMPERSONATE = "registry.impersonate"  # act on behalf of another principal
    REPORT_CHECKS = "checks.report"  # report CI results against versions (not move aliases)
    APPROVE = "versions.approve"  # approve a version for a protected alias


@dataclass(frozen=True)
class Visibility:
    """Which models a listing may show: all, or these names and name prefixes."""

    everything: bool
    names: frozenset[str] = frozenset()
    prefixes: frozenset[str] = frozenset()

    def allows(self, model_id: str) -> bool:
        """Whether ``model_id`` may be shown."""
        return (
            self.everything
            or model_id in self.names
            or any(model_id.startswith(p) for p in self.prefixes)
        )


class AccessCheck(Protocol):
    """What the rpc edge knows about the caller's rights, for the checks a handler makes
    itself (a resource known only after a lookup) and for listings (what may be shown)."""

    def require(self, permission: Permission, model_id: str | None) -> None:
        """Raise ``PermissionDenied`` unless the caller holds ``permission`` on ``model_id``."""
        ...

    def visibility(self, permission: Permission) -> Visibility:
        """The models the caller may see with ``permission``."""
        ...

    def holds(self, permission: Permission, model_id: str | None) -> bool:
        """Whether the caller holds ``permission`` on ``model_id``; a no is not a refusal
        (nothing is recorded), only an answer."""
        ...
