"""The AccessService servicer: proto in, use case, proto out."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from google.protobuf import timestamp_pb2

from modelregistry.access.v1 import access_service_pb2 as pb
from modelregistry.access.v1 import access_service_pb2_grpc, access_token_pb2, role_binding_pb2
from modelregistry_server.access.app.policy import AccessPolicy
from modelregistry_server.access.app.tokens import TokenService
from modelregistry_server.access.domain.policy import Binding
from modelregistry_server.access.domain.token import TokenRecord
from modelregistry_server.common.kernel.errors import InvalidArgument, quoted
from modelregistry_server.common.kernel.identity import Permission
from modelregistry_server.common.rpc.auth import current_principal
from modelregistry_server.common.rpc.handlers import unary_errors
from modelregistry_server.common.rpc.proto_time import request_duration, timestamp
from modelregistry_server.common.rpc.status import to_status

_Context = Any


def token_to_proto(record: TokenRecord) -> access_token_pb2.AccessToken:
    """A token record as the API shows it (no secret, no hash)."""

    def maybe(value: Any) -> timestamp_pb2.Timestamp | None:
        return None if value is None else timestamp(value)

    return access_token_pb2.AccessToken(
        name=record.name,
        principal=record.principal,
        description=record.description,
        create_time=timestamp(record.create_time),
        expire_time=maybe(record.expire_time),
        last_use_time=maybe(record.last_use_time),
        revoke_time=maybe(record.revoke_time),
        created_by=record.created_by,
    )


def binding_to_proto(binding: Binding) -> role_binding_pb2.RoleBinding:
    """A role binding as the API shows it."""
    return role_binding_pb2.RoleBinding(
        name=binding.name,
        subject=binding.subject,
        role=binding.role.value,
        scope=binding.scope,
        created_by=binding.created_by,
        create_time=timestamp(binding.create_time),
    )


_MAX_TESTED = 32
# A page asks before showing its buttons; a binding made a second ago shows on the next one.
_POLICY_FRESH_S = 1.0
_MODEL_RESOURCE = re.compile(r"models/([a-z][a-z0-9-]{0,62})")


def _tested_model(resource: str) -> str | None:
    if not resource:
        return None
    found = _MODEL_RESOURCE.fullmatch(resource)
    if found is None:
        raise InvalidArgument("resource", "must be models/{model} or empty (the whole registry)")
    return found.group(1)


def _tested_permissions(names: Sequence[str]) -> list[Permission]:
    if not names:
        raise InvalidArgument("permissions", "name at least one permission")
    if len(names) > _MAX_TESTED:
        raise InvalidArgument("permissions", f"at most {_MAX_TESTED}")
    known = {p.value: p for p in Permission}
    for name in names:
        if name not in known:
            raise InvalidArgument(
                "permissions", f"unknown permission {quoted(name)}; known: {', '.join(known)}"
            )
    return [known[name] for name in names]


class AccessServicer(access_service_pb2_grpc.AccessServiceServicer):
    """Who is calling, the tokens that say so, and the role bindings that say what they may do."""

    def __init__(self, tokens: TokenService, policy: AccessPolicy) -> None:
        self._tokens = tokens
        self._policy = policy

    @unary_errors(to_status)
    async def WhoAmI(  # noqa: N802 - gRPC method names are PascalCase
        self, request: pb.WhoAmIRequest, context: _Context
    ) -> pb.WhoAmIResponse:
        """See the proto."""
        principal = current_principal()
        return pb.WhoAmIResponse(
            principal=principal.name,
            authentication_method=principal.method,
            token=principal.token,
            groups=sorted(principal.groups),
        )

    @unary_errors(to_status)
    async def TestPermissions(  # noqa: N802
        self, request: pb.TestPermissionsRequest, context: _Context
    ) -> pb.TestPermissionsResponse:
        """See the proto."""
        model_id = _tested_model(request.resource)
        asked = _tested_permissions(request.permissions)
        await self._policy.refresh_if_older(_POLICY_FRESH_S)
        principal = current_principal()
        held = [p.value for p in asked if self._policy.allows(principal, p, model_id)]
        return pb.TestPermissionsResponse(permissions=held)

    @unary_errors(to_status)
    async def CreateAccessToken(  # noqa: N802
        self, request: pb.CreateAccessTokenRequest, context: _Context
    ) -> pb.CreateAccessTokenResponse:
        """See the proto."""
        ttl = request_duration(request, "ttl")
        record, secret = await self._tokens.create(
            request.principal, request.description, ttl, current_principal()
        )
        return pb.CreateAccessTokenResponse(access_token=token_to_proto(record), secret=secret)

    @unary_errors(to_status)
    async def ListAccessTokens(  # noqa: N802
        self, request: pb.ListAccessTokensRequest, context: _Context
    ) -> pb.ListAccessTokensResponse:
        """See the proto."""
        page = await self._tokens.list(
            request.page_size, request.page_token, request.principal, request.show_inactive
        )
        return pb.ListAccessTokensResponse(
            access_tokens=[token_to_proto(t) for t in page.items],
            next_page_token=page.next_page_token,
        )

    @unary_errors(to_status)
    async def RevokeAccessToken(  # noqa: N802
        self, request: pb.RevokeAccessTokenRequest, context: _Context
    ) -> access_token_pb2.AccessToken:
        """See the proto."""
        return token_to_proto(await self._tokens.revoke(request.name, current_principal()))

    @unary_errors(to_status)
    async def CreateRoleBinding(  # noqa: N802
        self, request: pb.CreateRoleBindingRequest, context: _Context
    ) -> role_binding_pb2.RoleBinding:
        """See the proto."""
        wanted = request.role_binding
        binding = await self._policy.grant(
            wanted.subject, wanted.role, wanted.scope, current_principal()
        )
        return binding_to_proto(binding)

    @unary_errors(to_status)
    async def ListRoleBindings(  # noqa: N802
        self, request: pb.ListRoleBindingsRequest, context: _Context
    ) -> pb.ListRoleBindingsResponse:
        """See the proto."""
        bindings = await self._policy.list(request.subject)
        return pb.ListRoleBindingsResponse(role_bindings=[binding_to_proto(b) for b in bindings])

    @unary_errors(to_status)
    async def DeleteRoleBinding(  # noqa: N802
        self, request: pb.DeleteRoleBindingRequest, context: _Context
    ) -> role_binding_pb2.RoleBinding:
        """See the proto."""
        return binding_to_proto(await self._policy.revoke(request.name, current_principal()))
