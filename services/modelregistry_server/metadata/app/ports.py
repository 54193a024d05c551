"""The ports the metadata use cases depend on, as ``typing.Protocol`` classes named by role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from modelregistry_server.metadata.domain.model import Model, ModelDraft

ModelSortField = Literal["name", "create_time", "update_time"]


@dataclass(frozen=True)
class ModelOrdering:
    """How a model listing is sorted; ``model_id`` breaks ties so the order is total."""

    field: ModelSortField = "name"
    descending: bool = False


@dataclass(frozen=True)
class ModelCursor:
    """The keyset position after which the next page starts."""

    sort_value: str | datetime
    model_id: str


class ModelRepository(Protocol):
    """Stores models. Every method is one transaction."""

    async def create(self, model_id: str, draft: ModelDraft, request_id: str | None) -> Model:
        """Insert a model; a replay of ``request_id`` returns the model it created.

        Raises:
            AlreadyExists: ``model_id`` is taken (and this is not a replay).
        """
        ...

    async def get(self, model_id: str) -> Model:
        """Return the model. Raises ``NotFound``."""
        ...

    async def list(
        self, ordering: ModelOrdering, after: ModelCursor | None, limit: int
    ) -> list[Model]:
        """Return up to ``limit`` models in ``ordering``, strictly after ``after``."""
        ...

    async def update(
        self,
        model_id: str,
        draft: ModelDraft,
        fields: frozenset[str],
        expected_etag: str,
        request_id: str | None,
    ) -> Model:
        """Overwrite ``fields`` from ``draft``; an empty ``expected_etag`` skips the check.

        A replay of ``request_id`` changes nothing and returns the model's current state.

        Raises:
            NotFound: No such model.
            EtagMismatch: ``expected_etag`` is not the current etag.
        """
        ...

    async def delete(self, model_id: str, expected_etag: str, request_id: str | None) -> None:
        """Delete the model. Raises ``NotFound`` or ``EtagMismatch``.

        A replay of ``request_id`` succeeds without doing anything.
        """
        ...


class SecretStore(Protocol):
    """Holds the server-wide secrets every replica must share."""

    async def page_token_secret(self) -> bytes:
        """Return the page-token signing secret, creating it on first use."""
        ...
