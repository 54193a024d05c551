"""The synchronous SDK client.

Every method returns the generated protobuf messages (``Model``, ``ModelVersion``, ``Alias``,
...) and raises :class:`~modelregistry.errors.RegistryError` subclasses. Unary calls get a
deadline (30 s by default) and are retried on ``UNAVAILABLE``; every mutating call carries a
fresh ``request_id`` so a retry never applies a change twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

import grpc

from modelregistry import _convert
from modelregistry._audit_calls import AuditCalls
from modelregistry._base import ClientBase
from modelregistry._governance import GovernanceCalls
from modelregistry._options import PullOptions, PushOptions
from modelregistry._pager import Pager
from modelregistry._transport import DEFAULT_TIMEOUT_S, RetryPolicy, TlsOptions, Transport
from modelregistry._watch import OnResync, WatchStream, watch_event_types
from modelregistry.access.v1 import access_service_pb2, access_token_pb2, role_binding_pb2
from modelregistry.diff import VersionDiff
from modelregistry.metadata.v1 import (
    alias_pb2,
    audit_event_pb2,
    metadata_service_pb2,
    model_pb2,
    model_version_pb2,
)

if TYPE_CHECKING:
    from modelregistry.progress import Progress

__all__ = ["Client", "WatchStream"]


class Client(ClientBase[Transport], GovernanceCalls, AuditCalls):
    """A connection to one registry. Use it as a context manager, or call :meth:`close`.

    ``target`` is ``host:port`` (default ``$MODELREGISTRY_URL`` or ``127.0.0.1:50051``), or
    several replicas: ``"10.0.0.5:50051,10.0.0.6:50051"`` (IP addresses) or
    ``"dns:///registry.internal:50051"`` (a name that resolves to each), whose calls are spread
    round-robin over the replicas that report SERVING (client-side health checking);
    ``artifact_target`` is the ArtifactService's address when it is served apart (``serve
    artifacts``; same forms; default ``$MODELREGISTRY_ARTIFACT_URL``, else ``target``);
    ``timeout`` is the deadline of each unary call in seconds; ``retry`` how ``UNAVAILABLE`` and
    the registry's ``RESOURCE_EXHAUSTED`` are retried (5 attempts with jittered exponential
    backoff by default, honouring the server's RetryInfo; see :class:`RetryPolicy`); ``token``
    the bearer token to present (default ``$MODELREGISTRY_TOKEN``, else what ``modelregistry
    login`` saved for this server; the audit log records the token's principal); ``cache_dir``
    the local file cache (default ``$MODELREGISTRY_CACHE``); ``offline`` serves ``resolve`` and
    ``pull`` from that cache without any network call (default ``$MODELREGISTRY_OFFLINE``).

    TLS: ``tls_ca`` is a PEM file of the CAs that may sign the server's certificate (default
    ``$MODELREGISTRY_TLS_CA``); ``tls_cert`` and ``tls_key`` a client certificate and its key for
    a server that requires mutual TLS (``$MODELREGISTRY_TLS_CERT``, ``$MODELREGISTRY_TLS_KEY``).
    The channel uses TLS when any of them is set or ``target`` starts with ``https://`` (then
    the system's trusted CAs check the server), and plaintext otherwise. ``credentials``, full
    gRPC channel credentials, overrides all three.
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        token: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        offline: bool | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        tls_ca: str | os.PathLike[str] | None = None,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        artifact_target: str | None = None,
    ) -> None:
        # The channel connects lazily, so building it costs nothing even when offline.
        tls = TlsOptions.resolve(target, tls_ca, tls_cert, tls_key)
        transport = Transport(
            target, timeout=timeout, retry=retry, token=token, credentials=credentials, tls=tls,
            artifact_target=artifact_target,
        )  # fmt: skip
        super().__init__(transport, cache_dir, offline)

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        """Close the channel (calls in flight fail with ``CANCELLED``) and the cache."""
        self._transport.close()
        self._close_cache()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ models

    def get_model(self, name: str) -> model_pb2.Model:
        """The model ``name`` (``resnet`` or ``models/resnet``)."""
        t = self._online("get_model")
        return t.unary(
            t.metadata_stub.GetModel,
            metadata_service_pb2.GetModelRequest(name=_convert.model_name(name)),
        )

    def create_model(
        self, name: str, *, description: str = "", labels: Mapping[str, str] | None = None
    ) -> model_pb2.Model:
        """Create an empty model; :class:`AlreadyExistsError` if the name is taken."""
        t = self._online("create_model")
        return t.unary(
            t.metadata_stub.CreateModel,
            _convert.create_model_request(name, description, labels),
        )

    def list_models(
        self, *, filter: str = "", order_by: str = "", page_size: int = 0
    ) -> Pager[metadata_service_pb2.ListModelsResponse, model_pb2.Model]:
        """Every model matching ``filter`` (AIP-160), fetched page by page as you iterate.

        ``page_size`` is the page size per call (0 = the server's default of 50), not a limit.
        """
        t = self._online("list_models")
        return Pager(
            lambda token: t.unary(
                t.metadata_stub.ListModels,
                _convert.list_models_request(filter, order_by, page_size, token),
            ),
            lambda page: page.models,
        )

    def delete_model(self, name: str, *, force: bool = False) -> None:
        """Delete a model; with ``force`` also its versions and aliases.

        Without ``force`` a model that still has versions fails with
        :class:`FailedPreconditionError` (reason ``MODEL_HAS_VERSIONS``).
        """
        t = self._online("delete_model")
        t.unary(t.metadata_stub.DeleteModel, _convert.delete_model_request(name, force))

    # ------------------------------------------------------------------ versions

    def get_version(self, model: str, version: int) -> model_version_pb2.ModelVersion:
        """Version number ``version`` of ``model``, in any state, with its manifest."""
        t = self._online("get_version")
        return t.unary(
            t.metadata_stub.GetModelVersion,
            metadata_service_pb2.GetModelVersionRequest(name=_convert.version_name(model, version)),
        )

    def list_versions(
        self,
        model: str,
        *,
        filter: str = "",
        order_by: str = "",
        page_size: int = 0,
        show_deleted: bool = False,
    ) -> Pager[metadata_service_pb2.ListModelVersionsResponse, model_version_pb2.ModelVersion]:
        """The versions of ``model`` (``-`` for every model), newest first by default.

        Listed versions carry no manifest (``files`` is empty); use :meth:`get_version` or
        :meth:`resolve` for that.
        """
        t = self._online("list_versions")
        return Pager(
            lambda token: t.unary(
                t.metadata_stub.ListModelVersions,
                _convert.list_versions_request(
                    model, filter, order_by, page_size, show_deleted, token
                ),
            ),
            lambda page: page.model_versions,
        )

    def resolve(self, ref: str, *, as_of: datetime | None = None) -> model_version_pb2.ModelVersion:
        """The READY version a reference names, with its manifest.

        ``ref`` is ``name`` (latest READY), ``name@alias``, ``name:3``, ``name/versions/3``
        (each optionally prefixed ``models/``) or a version uid. ``as_of`` resolves aliases and
        "latest" as they were at that time (a naive datetime is UTC). In offline mode the
        answer comes from the references recorded by earlier pulls, or
        :class:`NotCachedError`.
        """
        if self.offline:
            return self.cache.resolve_offline(ref, as_of)
        t = self._transport
        return t.unary(t.metadata_stub.ResolveModelVersion, _convert.resolve_request(ref, as_of))

    def update_version(
        self,
        model: str,
        version: int,
        *,
        description: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> model_version_pb2.ModelVersion:
        """Change a version's description and/or labels (``labels`` replaces the whole map).

        Only the arguments given are sent; with neither, the version is returned unchanged.
        """
        t = self._online("update_version")
        request = _convert.update_version_request(model, version, description, labels)
        if request is None:
            return self.get_version(model, version)
        return t.unary(t.metadata_stub.UpdateModelVersion, request)

    def delete_version(self, model: str, version: int) -> model_version_pb2.ModelVersion:
        """Soft-delete a version (it becomes ``DELETED``; its aliases are removed)."""
        t = self._online("delete_version")
        return t.unary(
            t.metadata_stub.DeleteModelVersion, _convert.delete_version_request(model, version)
        )

    def diff(self, a_ref: str, b_ref: str) -> VersionDiff:
        """Params, metrics and files that differ from ``a_ref`` (old) to ``b_ref`` (new)."""
        return VersionDiff.between(self.resolve(a_ref), self.resolve(b_ref))

    # ------------------------------------------------------------------ aliases

    def _governance_transport(self, operation: str) -> Transport:
        return self._online(operation)

    def set_alias(
        self, model: str, alias: str, version: int, *, expected_version: int | None = None
    ) -> alias_pb2.Alias:
        """Point ``alias`` at a READY version, creating the alias if needed.

        With ``expected_version`` the move only happens if the alias points there now (else
        :class:`ConflictError`, reason ``ALIAS_VERSION_MISMATCH``).
        """
        t = self._online("set_alias")
        return t.unary(
            t.metadata_stub.SetAlias,
            _convert.set_alias_request(model, alias, version, expected_version),
        )

    def delete_alias(self, model: str, alias: str) -> None:
        """Remove an alias; the version it pointed at is unchanged."""
        t = self._online("delete_alias")
        t.unary(t.metadata_stub.DeleteAlias, _convert.delete_alias_request(model, alias))

    def list_aliases(self, model: str) -> list[alias_pb2.Alias]:
        """Every alias of ``model``, in alias order."""
        t = self._online("list_aliases")
        parent = _convert.model_name(model)
        return list(
            Pager(
                lambda token: t.unary(
                    t.metadata_stub.ListAliases,
                    metadata_service_pb2.ListAliasesRequest(parent=parent, page_token=token),
                ),
                lambda page: page.aliases,
            )
        )

    # ------------------------------------------------------------------ events and audit

    def watch(
        self,
        model: str | None = None,
        *,
        after_event_id: str = "",
        event_types: Iterable[int | str] = (),
        on_resync: OnResync | None = None,
    ) -> WatchStream:
        """Iterate change events of ``model`` (or of every model) as they are committed.

        Without ``after_event_id`` the stream starts with the next event. If the connection
        drops (``UNAVAILABLE``: server restart, network) it reconnects with backoff from the
        last event received, so no event is missed or repeated; it keeps trying until closed.
        ``event_types`` takes enum values or names such as ``"ALIAS_MOVED"``. Close it (or use
        it as a context manager) to stop: that cancels the server stream, also from another
        thread.

        If the registry has deleted the events after the resume point (its event retention,
        reason ``EVENT_ID_EXPIRED``), the stream watches from "now" instead and, before any
        later event, calls ``on_resync(start_event_id)``: events may have been missed, so
        reload the state you follow there. ``stream.resyncs`` counts these gaps.
        """
        t = self._online("watch")
        types = watch_event_types(event_types)
        return WatchStream(t, model, after_event_id, types, on_resync)

    def list_audit_events(
        self,
        *,
        model: str = "",
        actor: str = "",
        start: datetime | None = None,
        end: datetime | None = None,
        order_by: str = "",
        page_size: int = 0,
        method: str = "",
    ) -> Pager[metadata_service_pb2.ListAuditEventsResponse, audit_event_pb2.AuditEvent]:
        """The audit log, newest first by default (``order_by="event_time asc"`` reverses it).

        ``start`` is inclusive, ``end`` exclusive; naive datetimes are UTC. ``method`` keeps
        the events of one method only (its exact short name, ``SetAlias``).
        """
        t = self._online("list_audit_events")
        return Pager(
            lambda token: t.unary(
                t.metadata_stub.ListAuditEvents,
                _convert.list_audit_events_request(
                    model, actor, start, end, order_by, page_size, token, method
                ),
            ),
            lambda page: page.audit_events,
        )

    def run_gc(
        self, *, dry_run: bool = False, grace_period: timedelta | None = None
    ) -> metadata_service_pb2.RunGarbageCollectionResponse:
        """Expire abandoned PENDING versions and delete unreferenced blobs.

        ``grace_period`` protects blobs younger than it (server default 48 h); ``dry_run``
        reports without deleting.
        """
        t = self._online("run_gc")
        return t.unary(
            t.metadata_stub.RunGarbageCollection, _convert.run_gc_request(dry_run, grace_period)
        )

    # ------------------------------------------------------------------ access

    def whoami(self) -> access_service_pb2.WhoAmIResponse:
        """Who the server says this client is (the principal of its token)."""
        t = self._online("whoami")
        return t.unary(t.access_stub.WhoAmI, access_service_pb2.WhoAmIRequest())

    def create_token(
        self, principal: str, *, description: str = "", ttl: timedelta | None = None
    ) -> access_service_pb2.CreateAccessTokenResponse:
        """A new token for ``principal``; the response's ``secret`` is shown only now."""
        t = self._online("create_token")
        return t.unary(
            t.access_stub.CreateAccessToken,
            _convert.create_token_request(principal, description, ttl),
        )

    def list_tokens(
        self, *, principal: str = "", show_inactive: bool = False
    ) -> list[access_token_pb2.AccessToken]:
        """Tokens newest first (never their secrets); revoked and expired ones on request."""
        t = self._online("list_tokens")
        return list(
            Pager(
                lambda token: t.unary(
                    t.access_stub.ListAccessTokens,
                    _convert.list_tokens_request(principal, show_inactive, token),
                ),
                lambda page: page.access_tokens,
            )
        )

    def revoke_token(self, name: str) -> access_token_pb2.AccessToken:
        """Revoke ``tokens/<id>`` (or the bare id); calls with it fail from now on."""
        t = self._online("revoke_token")
        return t.unary(
            t.access_stub.RevokeAccessToken,
            access_service_pb2.RevokeAccessTokenRequest(name=_convert.token_name(name)),
        )

    def grant(self, subject: str, role: str, scope: str) -> role_binding_pb2.RoleBinding:
        """Give ``subject`` (a principal, or ``group:<name>``) ``role`` on ``scope`` (a model,
        a ``prefix-*``, or ``*``); granting it again returns the existing binding."""
        t = self._online("grant")
        binding = role_binding_pb2.RoleBinding(subject=subject, role=role, scope=scope)
        return t.unary(
            t.access_stub.CreateRoleBinding,
            access_service_pb2.CreateRoleBindingRequest(role_binding=binding),
        )

    def list_bindings(self, subject: str = "") -> list[role_binding_pb2.RoleBinding]:
        """Role bindings (of one subject)."""
        t = self._online("list_bindings")
        reply = t.unary(
            t.access_stub.ListRoleBindings,
            access_service_pb2.ListRoleBindingsRequest(subject=subject),
        )
        return list(reply.role_bindings)

    def revoke_binding(self, name: str) -> role_binding_pb2.RoleBinding:
        """Remove the role binding ``roleBindings/<id>``."""
        t = self._online("revoke_binding")
        return t.unary(
            t.access_stub.DeleteRoleBinding, access_service_pb2.DeleteRoleBindingRequest(name=name)
        )

    # ------------------------------------------------------------------ files

    def push(
        self,
        path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        model: str,
        params: Mapping[str, _convert.ParamPyValue] | None = None,
        metrics: Mapping[str, float] | None = None,
        labels: Mapping[str, str] | None = None,
        description: str = "",
        alias: str | None = None,
        lineage: bool = True,
        parallelism: int = 4,
        progress: Progress | None = None,
        direct_upload: bool = True,
    ) -> model_version_pb2.ModelVersion:
        """Upload a file or folder as a new READY version of ``model`` and return it.

        The model is created if missing. Only files the store lacks are uploaded (by sha256),
        interrupted uploads resume, and the version becomes visible only once every file is
        in (two-phase commit). ``lineage`` records the git commit of ``path``; ``alias`` is set
        on the new version. ``progress`` is called from worker threads.

        Where the registry's store is S3/MinIO, each file of at most 5 GiB is PUT straight to
        the object store by a URL the registry signs for exactly that content (the store checks
        its SHA-256); ``direct_upload=False``, or a store this machine cannot reach, sends the
        bytes through the registry's ``Write`` stream instead.

        A push that fails deletes its version only while it is still PENDING; one found READY
        with this push's files (the commit's reply was lost) is returned as the result.
        """
        from modelregistry._push import push_model  # lazy: loads the transfer engine

        options = PushOptions(
            model=model,
            params=params,
            metrics=metrics,
            labels=labels,
            description=description,
            alias=alias,
            lineage=lineage,
            parallelism=parallelism,
            progress=progress,
            direct_upload=direct_upload,
        )
        return push_model(self._online("push"), self.cache, path, options)

    def pull(
        self,
        ref: str,
        dest: str | os.PathLike[str] | None = None,
        *,
        allow_patterns: Sequence[str] | str | None = None,
        ignore_patterns: Sequence[str] | str | None = None,
        parallelism: int = 4,
        progress: Progress | None = None,
    ) -> Path:
        """Download the version ``ref`` names and return the local folder holding its files.

        Files are verified by sha256 and kept in the cache, so pulling again downloads nothing;
        without ``dest`` the folder is a snapshot inside the cache. ``allow_patterns`` /
        ``ignore_patterns`` are globs on manifest paths. Offline, only cached refs work.
        """
        from modelregistry._pull import pull_model  # lazy: loads the transfer engine

        options = PullOptions(
            dest=dest,
            allow_patterns=allow_patterns,
            ignore_patterns=ignore_patterns,
            parallelism=parallelism,
            progress=progress,
        )
        transport = None if self.offline else self._transport
        return pull_model(transport, self.cache, ref, options, offline=self.offline)
