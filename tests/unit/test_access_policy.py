"""Roles, bindings and the one permission table, without a server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf.descriptor import ServiceDescriptor

from modelregistry.access.v1 import access_service_pb2
from modelregistry.artifact.v1 import artifact_service_pb2
from modelregistry.metadata.v1 import metadata_service_pb2
from modelregistry_server.access.app.policy import RELOAD_INTERVAL_S, AccessPolicy
from modelregistry_server.access.domain.policy import (
    Binding,
    Role,
    allows,
    holds_anywhere,
    validate_binding,
    visibility,
)
from modelregistry_server.access.rpc.permissions import RULES
from modelregistry_server.common.kernel.errors import InvalidArgument, PermissionDenied
from modelregistry_server.common.kernel.identity import Permission, Principal

T = datetime(2026, 1, 1, tzinfo=UTC)
ALICE = Principal("alice", "token")
SERVICES: list[ServiceDescriptor] = [
    metadata_service_pb2.DESCRIPTOR.services_by_name["MetadataService"],
    artifact_service_pb2.DESCRIPTOR.services_by_name["ArtifactService"],
    access_service_pb2.DESCRIPTOR.services_by_name["AccessService"],
]


def _binding(subject: str, role: Role, scope: str) -> Binding:
    return Binding("0" * 16, subject, role, scope, "admin", T)


def test_every_rpc_of_every_service_has_exactly_one_rule() -> None:
    methods = {f"/{s.full_name}/{m.name}" for s in SERVICES for m in s.methods}
    assert set(RULES) == methods


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.VIEWER, {Permission.READ}),
        (Role.WRITER, {Permission.READ, Permission.WRITE}),
        (
            Role.MAINTAINER,
            {
                Permission.READ, Permission.WRITE, Permission.MANAGE_ALIASES,
                Permission.DELETE_VERSIONS, Permission.APPROVE,
            },
        ),
        (Role.ADMIN, set(Permission) - {Permission.IMPERSONATE}),
        # A CI principal: reads and reports checks, cannot move an alias or approve.
        (Role.REPORTER, {Permission.READ, Permission.REPORT_CHECKS}),
    ],
)  # fmt: skip
def test_roles_nest(role: Role, allowed: set[Permission]) -> None:
    bindings = [_binding("alice", role, "*")]
    assert {p for p in Permission if allows(bindings, ALICE, p, "m")} == allowed


def test_scopes_cover_one_model_a_prefix_or_everything() -> None:
    one = [_binding("alice", Role.VIEWER, "fraud")]
    prefix = [_binding("alice", Role.VIEWER, "team-a-*")]
    everything = [_binding("alice", Role.VIEWER, "*")]
    assert allows(one, ALICE, Permission.READ, "fraud")
    assert not allows(one, ALICE, Permission.READ, "fraud-2")
    assert allows(prefix, ALICE, Permission.READ, "team-a-ranker")
    assert not allows(prefix, ALICE, Permission.READ, "team-b-ranker")
    # Registry-wide calls (model None) need a binding on everything.
    assert not allows(prefix, ALICE, Permission.READ, None)
    assert allows(everything, ALICE, Permission.READ, None)


def test_bindings_of_others_or_of_other_groups_give_nothing() -> None:
    bindings = [_binding("bob", Role.ADMIN, "*"), _binding("group:ops", Role.ADMIN, "*")]
    assert not allows(bindings, ALICE, Permission.READ, "m")
    assert not holds_anywhere(bindings, ALICE, Permission.READ)
    in_ops = Principal("alice", "oidc", groups=frozenset({"ops"}))
    assert allows(bindings, in_ops, Permission.DELETE_MODELS, "m")


def test_nothing_is_allowed_without_a_binding_except_to_internal_calls() -> None:
    assert not allows([], ALICE, Permission.READ, "m")
    assert allows([], Principal("modelregistry-internal", "internal"), Permission.ADMINISTER, None)


def test_visibility_lists_what_a_principal_may_read() -> None:
    bindings = [
        _binding("alice", Role.VIEWER, "fraud"),
        _binding("alice", Role.WRITER, "team-a-*"),
        _binding("alice", Role.ADMIN, "secret-*"),
        _binding("bob", Role.VIEWER, "*"),
    ]
    seen = visibility(bindings, ALICE, Permission.READ)
    assert not seen.everything
    assert seen.names == {"fraud"}
    assert seen.prefixes == {"team-a-", "secret-"}
    assert [seen.allows(m) for m in ("team-a-x", "fraud", "other")] == [True, True, False]
    assert visibility(bindings, Principal("bob", "token"), Permission.READ).everything


@pytest.mark.parametrize(
    ("subject", "role", "scope", "field"),
    [
        ("has space", "viewer", "m", "subject"),
        ("alice", "owner", "m", "role"),
        ("alice", "viewer", "Bad", "scope"),
        ("alice", "viewer", "a*b", "scope"),
        ("alice", "viewer", "", "scope"),
        ("alice", "viewer", "%", "scope"),
    ],
)
def test_a_binding_must_be_well_formed(subject: str, role: str, scope: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_binding(subject, role, scope)
    assert info.value.field == field


def test_well_formed_bindings() -> None:
    assert validate_binding("group:ml-platform", "admin", "*") is Role.ADMIN
    assert validate_binding("spiffe://ci/runner", "writer", "team-a-*") is Role.WRITER


def test_a_trailing_newline_does_not_name_a_model() -> None:
    # "$" would match before a final newline; the rule reads the name with \Z.
    rule = RULES["/modelregistry.metadata.v1.MetadataService/GetModel"]
    assert rule.model is not None
    assert rule.model(metadata_service_pb2.GetModelRequest(name="models/m")) == "m"
    assert rule.model(metadata_service_pb2.GetModelRequest(name="models/m/versions/1")) == "m"
    assert rule.model(metadata_service_pb2.GetModelRequest(name="models/m\n")) is None


class _Bindings:
    """An in-memory ``BindingStore``; ``changed_elsewhere`` edits it behind the policy's back,
    as another replica would."""

    def __init__(self) -> None:
        self.rows: dict[str, Binding] = {}

    async def insert(self, binding: Binding) -> Binding:
        self.rows[binding.name] = binding
        return binding

    async def delete(self, binding_id: str, actor: str) -> Binding | None:
        return self.rows.pop(f"roleBindings/{binding_id}", None)

    async def all(self) -> list[Binding]:
        return list(self.rows.values())


async def test_the_policys_answers_follow_grants_revokes_and_reloads() -> None:
    # The policy keeps which bindings grant what per snapshot of the bindings: each change
    # and each reload must be seen by the next check, never an answer cached before it.
    now = [0.0]
    store = _Bindings()
    policy = AccessPolicy(store, clock=lambda: T, monotonic=lambda: now[0])
    admin = Principal("admin", "token")
    await policy.refresh()
    assert not policy.allows(ALICE, Permission.READ, "fraud")  # asked and remembered: no
    granted = await policy.grant("alice", "viewer", "fraud", admin)
    assert policy.allows(ALICE, Permission.READ, "fraud")
    assert not policy.allows(ALICE, Permission.READ, "churn")
    await policy.revoke(granted.name, admin)
    with pytest.raises(PermissionDenied):
        policy.check(ALICE, Permission.READ, "fraud")
    # Granted on another replica: seen once the bindings are reloaded, not before.
    await store.insert(_binding("alice", Role.WRITER, "*"))
    assert not policy.allows(ALICE, Permission.WRITE, "churn")
    now[0] += RELOAD_INTERVAL_S
    await policy.refresh()
    assert policy.allows(ALICE, Permission.WRITE, "churn")
    assert policy.allows(Principal("svc", "internal"), Permission.DELETE_VERSIONS, None)
