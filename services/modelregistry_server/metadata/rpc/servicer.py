"""MetadataService servicer: validates nothing itself, only translates to and from use cases."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import empty_pb2

from modelregistry.metadata.v1 import metadata_service_pb2, metadata_service_pb2_grpc, model_pb2
from modelregistry_server.common.grpc_handlers import fill_unimplemented, unary_errors
from modelregistry_server.metadata.app.models import ModelService
from modelregistry_server.metadata.rpc.convert import draft_from_proto, model_to_proto
from modelregistry_server.metadata.rpc.errors import to_status

_Context = grpc.aio.ServicerContext[Any, Any]


class MetadataServicer(metadata_service_pb2_grpc.MetadataServiceServicer):
    """Serves models now; versions, aliases, audit and events arrive in later releases."""

    def __init__(self, models: ModelService) -> None:
        self._models = models

    @unary_errors(to_status)
    async def CreateModel(  # noqa: N802 - gRPC method names are PascalCase
        self, request: metadata_service_pb2.CreateModelRequest, context: _Context
    ) -> model_pb2.Model:
        """See the proto."""
        model = await self._models.create_model(
            request.model_id, draft_from_proto(request.model), request.request_id
        )
        return model_to_proto(model)

    @unary_errors(to_status)
    async def GetModel(  # noqa: N802
        self, request: metadata_service_pb2.GetModelRequest, context: _Context
    ) -> model_pb2.Model:
        """See the proto."""
        return model_to_proto(await self._models.get_model(request.name))

    @unary_errors(to_status)
    async def ListModels(  # noqa: N802
        self, request: metadata_service_pb2.ListModelsRequest, context: _Context
    ) -> metadata_service_pb2.ListModelsResponse:
        """See the proto."""
        page = await self._models.list_models(
            request.page_size, request.page_token, request.filter, request.order_by
        )
        return metadata_service_pb2.ListModelsResponse(
            models=[model_to_proto(m) for m in page.models],
            next_page_token=page.next_page_token,
        )

    @unary_errors(to_status)
    async def UpdateModel(  # noqa: N802
        self, request: metadata_service_pb2.UpdateModelRequest, context: _Context
    ) -> model_pb2.Model:
        """See the proto."""
        model = await self._models.update_model(
            request.model.name,
            draft_from_proto(request.model),
            list(request.update_mask.paths),
            request.model.etag,
            request.request_id,
        )
        return model_to_proto(model)

    @unary_errors(to_status)
    async def DeleteModel(  # noqa: N802
        self, request: metadata_service_pb2.DeleteModelRequest, context: _Context
    ) -> empty_pb2.Empty:
        """See the proto."""
        await self._models.delete_model(request.name, request.etag, request.request_id)
        return empty_pb2.Empty()


# Methods of the contract this release does not serve answer UNIMPLEMENTED, saying so.
fill_unimplemented(
    MetadataServicer, metadata_service_pb2.DESCRIPTOR.services_by_name["MetadataService"]
)
