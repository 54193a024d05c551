"""The one table from RPC to permission, and the interceptor that enforces it.

Every method of every service has exactly one ``Rule`` here (a test built from the service
descriptors fails for a method without one). A rule names the permission and where the call's
resource is:

- ``model``: the model a request field names; the caller needs the permission on it.
- ``anywhere``: a listing or a call not tied to one model yet: the caller needs the
  permission on some scope; listings then show only what it may see
  (``current_access().visibility``).
- ``registry``: registry-wide administration: the permission on ``*``.
- ``handler``: the model is known only after a lookup (a version uid): the handler checks
  with ``current_access().require`` once it knows.
- ``authenticated``: any authenticated caller (``WhoAmI``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import grpc

from modelregistry_server.access.app.denied_calls import DeniedCalls
from modelregistry_server.access.app.policy import AccessPolicy
from modelregistry_server.common.kernel.errors import PermissionDenied
from modelregistry_server.common.kernel.identity import Permission, Principal, Visibility
from modelregistry_server.common.rpc.auth import (
    current_principal,
    enter_access,
    is_open,
    leave_access,
    wrap_handler,
)

# A denial is checked again against freshly read bindings if the ones in memory are older.
_RECHECK_AFTER_S = 0.05  # at most 20 reloads a second however many calls are denied
Scope = Literal["model", "anywhere", "registry", "handler", "authenticated"]
_MODEL_NAME = re.compile(r"models/([a-z][a-z0-9-]{0,62})(?:/|\Z)")
_UUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class Rule:
    """What one RPC needs."""

    permission: Permission | None
    scope: Scope
    model: Callable[[Any], str | None] | None = None


def _name(field: str) -> Callable[[Any], str | None]:
    """The model in a resource-name field (``models/x``, ``models/x/versions/3``, ...)."""

    def model_of(request: Any) -> str | None:
        value = request
        for part in field.split("."):
            value = getattr(value, part)
        match = _MODEL_NAME.match(str(value))
        return None if match is None else match.group(1)

    return model_of


def _ref(request: Any) -> str | None:
    """The model of a version reference (``x``, ``x@a``, ``x:3``, ``models/x/...``); None for
    a uid, whose model the handler learns."""
    text = str(request.ref).strip().removeprefix("models/")
    if _UUID.fullmatch(text):
        return None
    return re.split(r"@|:|/", text, maxsplit=1)[0]


def _optional_model(field: str) -> Callable[[Any], str | None]:
    """A model filter that may be empty (then the call covers every model the caller sees)."""
    by_name = _name(field)
    return lambda request: by_name(request) if getattr(request, field) else None


READ, WRITE = Permission.READ, Permission.WRITE
_META = "/modelregistry.metadata.v1.MetadataService/"
_ART = "/modelregistry.artifact.v1.ArtifactService/"
_ACC = "/modelregistry.access.v1.AccessService/"

RULES: dict[str, Rule] = {
    _META + "GetModel": Rule(READ, "model", _name("name")),
    _META + "ListModels": Rule(READ, "anywhere"),
    _META + "CreateModel": Rule(WRITE, "model", lambda r: str(r.model_id)),
    _META + "UpdateModel": Rule(WRITE, "model", _name("model.name")),
    _META + "DeleteModel": Rule(Permission.DELETE_MODELS, "model", _name("name")),
    _META + "GetModelVersion": Rule(READ, "model", _name("name")),
    _META + "ListModelVersions": Rule(READ, "model", _name("parent")),  # models/-: anywhere
    _META + "CreateModelVersion": Rule(WRITE, "model", _name("parent")),
    _META + "UpdateModelVersion": Rule(WRITE, "model", _name("model_version.name")),
    _META + "DeleteModelVersion": Rule(Permission.DELETE_VERSIONS, "model", _name("name")),
    _META + "CommitModelVersion": Rule(WRITE, "model", _name("name")),
    _META + "ResolveModelVersion": Rule(READ, "model", _ref),  # a uid: the handler checks
    _META + "SetAlias": Rule(Permission.MANAGE_ALIASES, "model", _name("model")),
    _META + "DeleteAlias": Rule(Permission.MANAGE_ALIASES, "model", _name("name")),
    _META + "ListAliases": Rule(READ, "model", _name("parent")),
    _META + "WatchModelEvents": Rule(READ, "model", _optional_model("model")),
    _META + "ListAuditEvents": Rule(READ, "model", _optional_model("model")),
    _META + "RunGarbageCollection": Rule(Permission.ADMINISTER, "registry"),
    _META + "ReportCheck": Rule(Permission.REPORT_CHECKS, "model", _name("parent")),
    _META + "ListChecks": Rule(READ, "model", _name("parent")),
    _META + "SetProtectionRule": Rule(Permission.ADMINISTER, "registry"),
    _META + "ListProtectionRules": Rule(READ, "anywhere"),
    _META + "DeleteProtectionRule": Rule(Permission.ADMINISTER, "registry"),
    _META + "ApproveModelVersion": Rule(Permission.APPROVE, "model", _name("name")),
    _META + "WithdrawApproval": Rule(Permission.APPROVE, "model", _name("name")),
    _META + "ListApprovals": Rule(READ, "model", _name("parent")),
    # The whole audit log, registry-wide events included: what reading all of it needs.
    _META + "VerifyAuditLog": Rule(Permission.ADMINISTER, "registry"),
    _META + "ExportAuditLog": Rule(Permission.ADMINISTER, "registry"),
    # Until uploads name the model version they are for, they need the permission on some
    # model. Reads name the version they pull (``model_version``): the permission on its model,
    # and the handler checks that the version holds the blob; without a version, the handler
    # requires registry.admin on *.
    _ART + "CreateUploadSession": Rule(WRITE, "model", _name("model_version")),
    _ART + "Write": Rule(WRITE, "anywhere"),
    _ART + "QueryWriteStatus": Rule(WRITE, "anywhere"),
    _ART + "FinishDirectUpload": Rule(WRITE, "anywhere"),
    _ART + "FindMissingBlobs": Rule(WRITE, "anywhere"),
    _ART + "Read": Rule(READ, "model", _optional_model("model_version")),
    _ART + "GetBlob": Rule(READ, "anywhere"),
    _ART + "GenerateDownloadUrl": Rule(READ, "model", _optional_model("model_version")),
    _ART + "ListBlobs": Rule(Permission.ADMINISTER, "registry"),
    _ART + "DeleteBlob": Rule(Permission.ADMINISTER, "registry"),
    _ACC + "WhoAmI": Rule(None, "authenticated"),
    _ACC + "TestPermissions": Rule(None, "authenticated"),  # about the caller itself
    _ACC + "CreateAccessToken": Rule(Permission.ADMINISTER, "registry"),
    _ACC + "ListAccessTokens": Rule(Permission.ADMINISTER, "registry"),
    _ACC + "RevokeAccessToken": Rule(Permission.ADMINISTER, "registry"),
    _ACC + "CreateRoleBinding": Rule(Permission.ADMINISTER, "registry"),
    _ACC + "ListRoleBindings": Rule(Permission.ADMINISTER, "registry"),
    _ACC + "DeleteRoleBinding": Rule(Permission.ADMINISTER, "registry"),
}


class _CallAccess:
    """``AccessCheck`` of one call: the policy applied to its principal."""

    def __init__(
        self,
        policy: AccessPolicy,
        denied: DeniedCalls,
        method: str,
        principal: Principal,
        checked: tuple[Permission, str | None] | None,
    ) -> None:
        self._policy = policy
        self._denied = denied
        self._method = method
        self._principal = principal
        # What the interceptor has checked already: a handler asking again costs nothing.
        self._checked = checked

    def require(self, permission: Permission, model_id: str | None) -> None:
        if (permission, model_id) == self._checked:
            return
        try:
            self._policy.check(self._principal, permission, model_id)
        except PermissionDenied as error:
            self._denied.note(self._principal, self._method, error)
            raise

    def visibility(self, permission: Permission) -> Visibility:
        return self._policy.visibility(self._principal, permission)

    def holds(self, permission: Permission, model_id: str | None) -> bool:
        try:
            self._policy.check(self._principal, permission, model_id)
        except PermissionDenied:
            return False
        return True


class AuthorizationInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Checks every call against ``RULES``; runs after ``AuthInterceptor`` (it needs the
    principal). A method missing from the table is refused outright: failing closed."""

    def __init__(self, policy: AccessPolicy, denied: DeniedCalls) -> None:
        self._policy = policy
        self._denied = denied

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        """Wrap the method's handler so that it is authorized first."""
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or is_open(method):
            return handler
        rule = RULES.get(method)
        policy, denied = self._policy, self._denied

        async def enter(request: Any, context: Any) -> Callable[[], None]:
            principal = current_principal()
            try:
                if rule is None:  # a method nobody classified: nobody may call it (fail closed)
                    raise PermissionDenied("(none: not in the permission table)", method)
                await policy.refresh()
                try:
                    checked = _check(policy, rule, principal, request)
                except PermissionDenied:
                    if not await policy.refresh_if_older(_RECHECK_AFTER_S):
                        raise
                    # with the bindings as they are now
                    checked = _check(policy, rule, principal, request)
            except PermissionDenied as error:
                denied.note(principal, method, error)
                raise
            token = enter_access(_CallAccess(policy, denied, method, principal, checked))
            return lambda: leave_access(token)

        return wrap_handler(handler, enter)


def _check(
    policy: AccessPolicy, rule: Rule, principal: Principal, request: Any
) -> tuple[Permission, str | None] | None:
    """Check ``rule``; return the (permission, model) it established, if one model's."""
    if rule.permission is None or rule.scope in ("authenticated", "handler"):
        return None
    if rule.scope == "registry":
        policy.check(principal, rule.permission, None)
        return (rule.permission, None)
    model_id = None if rule.model is None or request is None else rule.model(request)
    if model_id is None:  # a listing over every model, or a model known only later
        policy.check_anywhere(principal, rule.permission)
        return None
    policy.check(principal, rule.permission, model_id)
    return (rule.permission, model_id)
