"""Errors the metadata use cases raise: the kernel's, plus helpers that name metadata resources.

Every class comes from ``common.kernel.errors`` (one status code each, translated once at the
rpc boundary); ``reason`` is the UPPER_SNAKE ``google.rpc.ErrorInfo.reason`` clients switch
on, the message a sentence for a person.
"""

from __future__ import annotations

from modelregistry_server.common.kernel.errors import (
    Aborted,
    AlreadyExists,
    EtagMismatch,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
    RegistryError,
    Unavailable,
    Unimplemented,
    quoted,
)

MODEL = "MODEL"
MODEL_VERSION = "MODEL_VERSION"
ALIAS = "ALIAS"


def resource_kind(resource: str) -> str:
    """The kind of a metadata resource, which its name's shape tells."""
    if "/aliases/" in resource:
        return ALIAS
    if "/versions/" in resource:
        return MODEL_VERSION
    return MODEL


def not_found(resource: str, *, detail: str = "") -> NotFound:
    """``NotFound`` for a metadata resource name (``models/x``, ``models/x/versions/3``, …)."""
    return NotFound(resource_kind(resource), resource, detail=detail)


def already_exists(resource: str) -> AlreadyExists:
    """``AlreadyExists`` for a metadata resource name."""
    return AlreadyExists(resource_kind(resource), resource)


__all__ = [
    "ALIAS",
    "MODEL",
    "MODEL_VERSION",
    "Aborted",
    "AlreadyExists",
    "EtagMismatch",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "RegistryError",
    "Unavailable",
    "Unimplemented",
    "already_exists",
    "not_found",
    "quoted",
    "resource_kind",
]
