"""OpenID Connect identities: how the verified claims of a JWT become a principal's name and groups.

The registry trusts one issuer (``--oidc-issuer``). Once a JWT's signature and standard claims
checked out (an adapter's job), these rules read the configured principal claim (``sub`` by
default, or e.g. ``email``) and groups claim (``groups``). The name is kept as the issuer
wrote it, after an optional prefix: token principals and OIDC principals share one namespace,
so a role binding for ``alice@example.com`` holds for both unless a prefix sets them apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeGuard

MAX_NAME = 256


@dataclass(frozen=True)
class ClaimMapping:
    """Which claims name the principal and its groups.

    Attributes:
        principal_claim: The claim whose value is the principal's name (``sub``, ``email``…).
        groups_claim: The claim holding the principal's groups (a list of strings).
        principal_prefix: Put before every OIDC principal's name ("" for none).
    """

    principal_claim: str = "sub"
    groups_claim: str = "groups"
    principal_prefix: str = ""


class ClaimRejected(ValueError):
    """The verified claims name no principal (the message names the claim, never its value)."""


def usable_name(value: object) -> TypeGuard[str]:
    """A principal or group name: a non-empty string of at most 256 printable characters
    without spaces (it is written into audit rows and log lines as is)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_NAME
        and value.isprintable()
        and not any(c.isspace() for c in value)
    )


def identity_from_claims(
    claims: Mapping[str, object], mapping: ClaimMapping
) -> tuple[str, frozenset[str]]:
    """The principal's name and groups from a JWT's verified claims.

    Groups are the strings of the groups claim when it is a list (other entries are skipped);
    any other value, or none, means no groups.

    Raises:
        ClaimRejected: The principal claim is missing or not a usable name.
    """
    value = claims.get(mapping.principal_claim)
    name = mapping.principal_prefix + value if isinstance(value, str) and value else None
    if not usable_name(name):
        raise ClaimRejected(
            f"its {mapping.principal_claim!r} claim is missing or not a usable principal name"
        )
    raw_groups = claims.get(mapping.groups_claim)
    groups: frozenset[str] = frozenset()
    if isinstance(raw_groups, list):
        groups = frozenset(group for group in raw_groups if usable_name(group))
    return name, groups
