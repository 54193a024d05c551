"""modelregistry: the Python client for the model registry.

``Client`` (sync) and ``AsyncClient`` (asyncio) cover models, versions, aliases, events, the
audit log, garbage collection and push/pull of model files; every failure is a
``RegistryError`` subclass. The generated gRPC stubs live in ``modelregistry.metadata.v1`` and
``modelregistry.artifact.v1``.
"""

from modelregistry._transport import NO_RETRY, RetryPolicy
from modelregistry.aio import AsyncClient, AsyncWatchStream
from modelregistry.client import Client, WatchStream
from modelregistry.diff import VersionDiff
from modelregistry.errors import (
    AlreadyExistsError,
    CancelledError,
    ConflictError,
    DeadlineExceededError,
    FailedPreconditionError,
    IntegrityError,
    InternalError,
    InvalidArgumentError,
    InvalidResponseError,
    NotCachedError,
    NotFoundError,
    OutOfRangeError,
    PermissionDeniedError,
    RegistryError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
    UnsafeDestinationError,
)

__version__ = "0.1.0"

__all__ = [
    "NO_RETRY",
    "AlreadyExistsError",
    "AsyncClient",
    "AsyncWatchStream",
    "CancelledError",
    "Client",
    "ConflictError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "IntegrityError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidResponseError",
    "NotCachedError",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "RegistryError",
    "ResourceExhaustedError",
    "RetryPolicy",
    "UnauthenticatedError",
    "UnavailableError",
    "UnsafeDestinationError",
    "VersionDiff",
    "WatchStream",
    "__version__",
]
