"""Conversions between metadata domain objects and their protobuf messages."""

from __future__ import annotations

from modelregistry.metadata.v1 import model_pb2
from modelregistry_server.common.proto_time import timestamp
from modelregistry_server.metadata.domain.model import Model, ModelDraft


def model_to_proto(model: Model) -> model_pb2.Model:
    """Return the wire form of ``model``."""
    return model_pb2.Model(
        name=model.name,
        uid=model.uid,
        description=model.description,
        labels=dict(model.labels),
        owner=model.owner,
        create_time=timestamp(model.create_time),
        update_time=timestamp(model.update_time),
        etag=model.etag,
    )


def draft_from_proto(message: model_pb2.Model) -> ModelDraft:
    """Return the caller-settable fields of ``message``."""
    return ModelDraft(
        description=message.description, labels=dict(message.labels), owner=message.owner
    )
