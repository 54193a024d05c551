"""The request_id rule both services share (AIP-155): a UUID, compared in canonical form."""

from __future__ import annotations

import uuid

from modelregistry_server.common.kernel.errors import InvalidArgument, quoted


def validate_request_id(value: str) -> str | None:
    """Return ``value`` as a canonical UUID string, or None when it is empty.

    Raises:
        InvalidArgument: ``value`` is not a UUID; the message says what is expected.
    """
    if not value:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidArgument(
            "request_id", f"{quoted(value)} is not a UUID (e.g. {uuid.uuid4()})"
        ) from None
