"""Roles, permissions and role bindings: who may do what, as pure rules.

A binding gives a subject (a principal, or ``group:<name>``) a role on a scope: one model
(``fraud``), a name prefix (``team-a-*``), or everything (``*``). Roles nest:
``viewer`` ⊂ ``writer`` ⊂ ``maintainer`` ⊂ ``admin``. A principal may do what any binding of
it or of one of its groups allows; nothing is allowed without a binding.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from modelregistry_server.common.kernel.audit import rfc3339
from modelregistry_server.common.kernel.errors import InvalidArgument, quoted
from modelregistry_server.common.kernel.identity import Permission, Principal, Visibility

GROUP_PREFIX = "group:"
EVERYTHING = "*"
_SCOPE = re.compile(r"\*|[a-z][a-z0-9-]{0,62}\*?")
_SUBJECT = re.compile(r"(group:)?[!-~]{1,256}")  # printable, no spaces: OIDC names vary


class Role(StrEnum):
    """A named set of permissions; each of the first four includes the ones before it.

    ``impersonator`` stands apart: it only lets a service name, in the
    ``x-modelregistry-actor`` header, the user it acts for (the audit log then records both).
    ``reporter`` stands apart too: a CI principal that reads models and reports checks against
    their versions, and cannot move an alias, so the job a gate trusts cannot open it itself.
    """

    VIEWER = "viewer"
    WRITER = "writer"
    MAINTAINER = "maintainer"
    ADMIN = "admin"
    IMPERSONATOR = "impersonator"
    REPORTER = "reporter"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.WRITER: frozenset({Permission.READ, Permission.WRITE}),
    Role.MAINTAINER: frozenset(
        {
            Permission.READ,
            Permission.WRITE,
            Permission.MANAGE_ALIASES,
            Permission.DELETE_VERSIONS,
            Permission.APPROVE,
        }
    ),
    Role.ADMIN: frozenset(set(Permission) - {Permission.IMPERSONATE}),
    Role.IMPERSONATOR: frozenset({Permission.IMPERSONATE}),
    Role.REPORTER: frozenset({Permission.READ, Permission.REPORT_CHECKS}),
}


@dataclass(frozen=True)
class Binding:
    """``subject`` holds ``role`` on ``scope``."""

    binding_id: str
    subject: str
    role: Role
    scope: str
    created_by: str
    create_time: datetime

    @property
    def name(self) -> str:
        """``roleBindings/{id}``."""
        return f"roleBindings/{self.binding_id}"

    def snapshot(self) -> dict[str, object]:
        """The binding as the audit log records it (the ``RoleBinding`` message's fields)."""
        return {
            "name": self.name,
            "subject": self.subject,
            "role": self.role.value,
            "scope": self.scope,
            "created_by": self.created_by,
            "create_time": rfc3339(self.create_time),
        }

    def covers(self, model_id: str | None) -> bool:
        """Whether the scope includes ``model_id`` (None: a registry-wide call, only ``*``)."""
        if self.scope == EVERYTHING:
            return True
        if model_id is None:
            return False
        if self.scope.endswith("*"):
            return model_id.startswith(self.scope[:-1])
        return model_id == self.scope


def subjects_of(principal: Principal) -> frozenset[str]:
    """The subjects a principal's bindings may name: itself and its groups."""
    return frozenset({principal.name, *(GROUP_PREFIX + g for g in principal.groups)})


def granting(
    bindings: Iterable[Binding], principal: Principal, permission: Permission
) -> list[Binding]:
    """The bindings that give ``principal`` (or one of its groups) ``permission``."""
    subjects = subjects_of(principal)
    return [b for b in bindings if b.subject in subjects and permission in ROLE_PERMISSIONS[b.role]]


def allows(
    bindings: Iterable[Binding], principal: Principal, permission: Permission, model_id: str | None
) -> bool:
    """Whether ``principal`` holds ``permission`` on ``model_id`` (None: registry-wide)."""
    return is_internal(principal) or covered(granting(bindings, principal, permission), model_id)


def is_internal(principal: Principal) -> bool:
    """The registry's own services calling each other: allowed everything."""
    return principal.method == "internal"


def covered(granted: Iterable[Binding], model_id: str | None) -> bool:
    """Whether one of the ``granted`` bindings covers ``model_id`` (None: registry-wide)."""
    return any(b.covers(model_id) for b in granted)


def holds_anywhere(
    bindings: Iterable[Binding], principal: Principal, permission: Permission
) -> bool:
    """Whether ``principal`` holds ``permission`` on at least one scope."""
    return is_internal(principal) or bool(granting(bindings, principal, permission))


def visibility(
    bindings: Iterable[Binding], principal: Principal, permission: Permission
) -> Visibility:
    """The models ``principal`` may see with ``permission``."""
    if is_internal(principal):
        return Visibility(True)
    granted = granting(bindings, principal, permission)
    if any(b.scope == EVERYTHING for b in granted):
        return Visibility(True)
    return Visibility(
        False,
        frozenset(b.scope for b in granted if not b.scope.endswith("*")),
        frozenset(b.scope[:-1] for b in granted if b.scope.endswith("*")),
    )


def validate_binding(subject: str, role: str, scope: str) -> Role:
    """The rules of a new binding; returns its role."""
    if not _SUBJECT.fullmatch(subject):
        raise InvalidArgument(
            "subject", "must be a principal name, or group:<name>, of 1 to 256 characters"
        )
    try:
        parsed = Role(role)
    except ValueError:
        raise InvalidArgument(
            "role", f"must be one of {', '.join(r.value for r in Role)}, not {quoted(role)}"
        ) from None
    if not _SCOPE.fullmatch(scope):
        raise InvalidArgument(
            "scope",
            "must be a model id (fraud), a model id prefix ending in * (team-a-*), or * for "
            "every model",
        )
    return parsed
