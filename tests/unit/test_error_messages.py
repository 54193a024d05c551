"""An error that echoes a caller's string quotes a short prefix of it, and names the field.

A megabyte-long id must not come back as a megabyte-long message (or overflow the trailers a
status travels in): domain and app code quote through ``kernel.errors.quoted``, and
``common.rpc.status`` cuts whatever is still too long.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from google.rpc import error_details_pb2, status_pb2

from modelregistry_server.access.domain.policy import validate_binding
from modelregistry_server.artifacts.domain.blob import parse_blob_name, validate_sha256
from modelregistry_server.artifacts.domain.upload import parse_session_name
from modelregistry_server.common.kernel.errors import InvalidArgument, RegistryError, quoted
from modelregistry_server.common.kernel.page_token import PageTokenCodec
from modelregistry_server.common.kernel.paging import Paginator
from modelregistry_server.common.rpc.status import MAX_DETAIL_BYTES, MAX_MESSAGE_BYTES, to_status
from modelregistry_server.metadata.app.models import ModelService
from modelregistry_server.metadata.app.versions import VersionService
from modelregistry_server.metadata.domain.model import ModelDraft
from modelregistry_server.metadata.domain.version import (
    ManifestFile,
    VersionDraft,
    parse_alias_name,
    parse_version_name,
    validate_manifest,
)
from tests.unit.fakes import (
    FakeBlobChecker,
    InMemoryModelRepository,
    InMemoryRegistry,
    InMemoryVersionRepository,
)

pytestmark = pytest.mark.timeout(10)

HUGE = "A" * (1024 * 1024)  # a megabyte, and not valid anywhere (upper case)
SHORT = 1024


def test_quoted_keeps_short_text_and_cuts_long_text() -> None:
    assert quoted("abc") == "'abc'"
    assert quoted("x" * 64) == repr("x" * 64)
    assert quoted("x" * 65) == repr("x" * 64) + "… (65 characters)"
    assert quoted(HUGE, 10) == "'AAAAAAAAAA'… (1048576 characters)"


def _registry() -> tuple[ModelService, VersionService]:
    registry = InMemoryRegistry()
    registry.put_model("m")
    paginator = Paginator(PageTokenCodec(b"k" * 32))
    models = ModelService(registry.uow, InMemoryModelRepository(registry), paginator)
    versions = VersionService(
        registry.uow,
        InMemoryVersionRepository(registry),
        InMemoryModelRepository(registry),
        FakeBlobChecker(),
        paginator,
    )
    return models, versions


Call = Callable[[ModelService, VersionService], Awaitable[object]]


async def _sync(call: Callable[[], object]) -> object:
    return call()


CASES: dict[str, tuple[str, Call]] = {
    "model id": ("model_id", lambda m, v: m.create_model(HUGE, ModelDraft())),
    "model name": ("name", lambda m, v: m.get_model("models/" + HUGE)),
    "label key": ("model.labels", lambda m, v: m.create_model("x", ModelDraft(labels={HUGE: ""}))),
    "version label key": (
        "model_version.labels",
        lambda m, v: v.create_version("models/m", VersionDraft(labels={HUGE: ""}), "t"),
    ),
    "param key": (
        "model_version.params",
        lambda m, v: v.create_version("models/m", VersionDraft(params={HUGE: 1}), "t"),
    ),
    "ref": ("ref", lambda m, v: v.resolve(HUGE)),
    "ref alias": ("ref", lambda m, v: v.resolve("m@" + HUGE)),
    "ref number": ("ref", lambda m, v: v.resolve("m:" + "9" * len(HUGE))),
    "version name": ("name", lambda m, v: v.get_version("models/m/versions/" + HUGE)),
    "alias": ("alias", lambda m, v: v.set_alias("models/m", HUGE, "models/m/versions/1", "", "t")),
    "request id": ("request_id", lambda m, v: m.create_model("x", ModelDraft(), HUGE)),
    "manifest path": (
        "files[0].path",
        lambda m, v: _sync(lambda: validate_manifest([ManifestFile("a/" + HUGE, "0" * 64, 1)])),
    ),
    "manifest digest": (
        "files[0].sha256",
        lambda m, v: _sync(lambda: validate_manifest([ManifestFile("a", HUGE, 1)])),
    ),
    "alias name": (
        "name",
        lambda m, v: _sync(lambda: parse_alias_name("models/m/aliases/" + HUGE)),
    ),
    "version name (parse)": ("name", lambda m, v: _sync(lambda: parse_version_name(HUGE))),
    "sha256": ("sha256", lambda m, v: _sync(lambda: validate_sha256(HUGE))),
    "blob name": ("name", lambda m, v: _sync(lambda: parse_blob_name("blobs/" + HUGE))),
    "upload session": ("upload_session", lambda m, v: _sync(lambda: parse_session_name(HUGE))),
    "role": ("role", lambda m, v: _sync(lambda: validate_binding("ann", HUGE, "*"))),
}


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_a_megabyte_of_input_gives_a_short_error_naming_the_field(case: str) -> None:
    field, call = CASES[case]
    models, versions = _registry()
    with pytest.raises(InvalidArgument) as info:
        await call(models, versions)
    error = info.value
    assert error.field == field
    assert len(error.message.encode()) < SHORT, error.message[:200]
    assert error.message.startswith(f"{field}: ")
    assert all(len(value) < SHORT for value in error.metadata.values())
    status = to_status(error)
    assert status is not None
    assert status.details == error.message  # short already: nothing was cut


def _decode(status: object) -> status_pb2.Status:
    trailers = dict(getattr(status, "trailing_metadata", ()))
    return status_pb2.Status.FromString(trailers["grpc-status-details-bin"])


def test_the_status_of_an_overlong_error_is_cut_to_fit_the_trailers() -> None:
    error = InvalidArgument("f" + "\u00e9" * 100_000, "\U0001f642" * 100_000)
    error.metadata["resource"] = "r" * 100_000
    status = to_status(error)
    assert status is not None
    assert len(status.details.encode()) <= MAX_MESSAGE_BYTES
    assert status.details.startswith("f\u00e9\u00e9")
    assert "(cut from " in status.details
    detail = _decode(status)
    assert detail.message == status.details
    info = error_details_pb2.ErrorInfo()
    bad_request = error_details_pb2.BadRequest()
    assert detail.details[0].Unpack(info)
    assert detail.details[1].Unpack(bad_request)
    assert info.reason == "FIELD_INVALID"
    assert all(len(value.encode()) <= MAX_DETAIL_BYTES for value in info.metadata.values())
    violation = bad_request.field_violations[0]
    assert len(violation.field.encode()) <= MAX_DETAIL_BYTES
    assert len(violation.description.encode()) <= MAX_DETAIL_BYTES
    # Well under the 8 KiB gRPC clients accept in metadata by default, even base64-encoded.
    assert len(detail.SerializeToString()) * 4 / 3 + len(status.details.encode()) * 3 < 8192


def test_a_short_status_is_left_as_it_is() -> None:
    status = to_status(RegistryError("x" * MAX_MESSAGE_BYTES, metadata={"k": "v" * 512}))
    assert status is not None
    assert status.details == "x" * MAX_MESSAGE_BYTES
    info = error_details_pb2.ErrorInfo()
    assert _decode(status).details[0].Unpack(info)
    assert info.metadata["k"] == "v" * 512
