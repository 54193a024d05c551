"""In-memory fakes of the metadata ports, for unit tests of the use cases."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

from modelregistry_server.metadata.app.ports import ModelCursor, ModelOrdering
from modelregistry_server.metadata.domain.errors import AlreadyExists, EtagMismatch, NotFound
from modelregistry_server.metadata.domain.model import Model, ModelDraft


class InMemoryModelRepository:
    """``ModelRepository`` over a dict; a fake clock ticks one second per write."""

    def __init__(self) -> None:
        self.models: dict[str, Model] = {}
        self.requests: dict[str, str] = {}
        self._now = datetime(2026, 1, 1, tzinfo=UTC)
        self._etags = 0

    def _tick(self) -> tuple[datetime, str]:
        self._now += timedelta(seconds=1)
        self._etags += 1
        return self._now, f"e{self._etags}"

    async def create(
        self, model_id: str, draft: ModelDraft, request_id: str | None, actor: str = ""
    ) -> Model:
        if request_id is not None and request_id in self.requests:
            return self.models[self.requests[request_id]]
        if model_id in self.models:
            raise AlreadyExists("models/" + model_id)
        now, etag = self._tick()
        model = Model(
            model_id,
            str(uuid.uuid4()),
            draft.description,
            dict(draft.labels),
            draft.owner,
            now,
            now,
            etag,
        )
        self.models[model_id] = model
        if request_id is not None:
            self.requests[request_id] = model_id
        return model

    async def get(self, model_id: str) -> Model:
        if model_id not in self.models:
            raise NotFound("models/" + model_id)
        return self.models[model_id]

    async def list(
        self,
        ordering: ModelOrdering,
        after: ModelCursor | None,
        limit: int,
        filter_expr: object = None,
    ) -> list[Model]:
        assert filter_expr is None, "the in-memory fake does not evaluate filters"

        def key(m: Model) -> tuple[object, str]:
            return (
                m.model_id if ordering.field == "name" else getattr(m, ordering.field),
                m.model_id,
            )

        rows = sorted(self.models.values(), key=key, reverse=ordering.descending)
        if after is not None:
            cursor = (
                after.sort_value if ordering.field != "name" else after.model_id,
                after.model_id,
            )
            rows = [
                r for r in rows if (key(r) < cursor if ordering.descending else key(r) > cursor)
            ]
        return rows[:limit]

    async def update(
        self,
        model_id: str,
        draft: ModelDraft,
        fields: frozenset[str],
        expected_etag: str,
        request_id: str | None,
        actor: str = "",
    ) -> Model:
        if request_id is not None and request_id in self.requests:
            return await self.get(model_id)
        if request_id is not None:
            self.requests[request_id] = model_id
        current = await self.get(model_id)
        if expected_etag and expected_etag != current.etag:
            raise EtagMismatch("models/" + model_id, expected_etag, current.etag)
        now, etag = self._tick()
        changes = {f: getattr(draft, f) for f in fields}
        updated = dataclasses.replace(current, update_time=now, etag=etag, **changes)
        self.models[model_id] = updated
        return updated

    async def delete(
        self,
        model_id: str,
        expected_etag: str,
        request_id: str | None,
        force: bool = False,
        actor: str = "",
    ) -> None:
        if request_id is not None and request_id in self.requests:
            return
        if request_id is not None:
            self.requests[request_id] = model_id
        current = await self.get(model_id)
        if expected_etag and expected_etag != current.etag:
            raise EtagMismatch("models/" + model_id, expected_etag, current.etag)
        del self.models[model_id]
