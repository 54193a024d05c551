"""Who is calling: the ``Principal`` every layer below the rpc edge works with.

The rpc layer turns a credential into a principal once per call (``common/rpc/auth.py``);
use cases take it as an argument and record ``principal.name`` as the actor. Nothing below
the rpc layer reads credentials or metadata headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
