"""Unit tests of the servicer plumbing: UNIMPLEMENTED fill-ins and error translation."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from modelregistry.metadata.v1 import metadata_service_pb2, metadata_service_pb2_grpc
from modelregistry_server.common.rpc.handlers import fill_unimplemented, unary_errors
from modelregistry_server.common.rpc.status import to_status
from modelregistry_server.metadata.domain.errors import not_found

pytestmark = pytest.mark.timeout(10)


class Aborted(Exception):
    """What the fake context raises, like grpc.aio's abort does."""


class FakeContext:
    """Records the status a handler aborts with."""

    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.trailing: Any = None

    async def abort(self, code: grpc.StatusCode, details: str, trailing: Any = None) -> None:
        self.code, self.details, self.trailing = code, details, trailing
        raise Aborted


class Partial(metadata_service_pb2_grpc.MetadataServiceServicer):
    """A servicer that implements nothing itself."""


fill_unimplemented(Partial, metadata_service_pb2.DESCRIPTOR.services_by_name["MetadataService"])


def _partial() -> Any:
    # Typed loosely: mypy sees the generated abstract methods, not the ones filled at runtime.
    return Partial()  # type: ignore[abstract]


async def test_missing_unary_method_answers_unimplemented_naming_it() -> None:
    context = FakeContext()
    with pytest.raises(Aborted):
        await _partial().GetModel(metadata_service_pb2.GetModelRequest(), context)
    assert context.code == grpc.StatusCode.UNIMPLEMENTED
    assert "GetModel" in context.details
    assert "not implemented" in context.details


async def test_missing_streaming_method_answers_unimplemented() -> None:
    context = FakeContext()
    stream = _partial().WatchModelEvents(metadata_service_pb2.WatchModelEventsRequest(), context)
    with pytest.raises(Aborted):
        async for _ in stream:
            pass
    assert context.code == grpc.StatusCode.UNIMPLEMENTED


class Failing:
    @unary_errors(to_status)
    async def Get(self, request: object, context: object) -> None:  # noqa: N802
        raise not_found("models/x")

    @unary_errors(to_status)
    async def Crash(self, request: object, context: object) -> None:  # noqa: N802
        raise RuntimeError("SELECT secret FROM table")


async def test_domain_error_becomes_its_status() -> None:
    context = FakeContext()
    with pytest.raises(Aborted):
        await Failing().Get(None, context)
    assert context.code == grpc.StatusCode.NOT_FOUND
    assert context.details == "models/x not found"


async def test_a_bug_is_internal_and_leaks_nothing() -> None:
    context = FakeContext()
    with pytest.raises(Aborted):
        await Failing().Crash(None, context)
    assert context.code == grpc.StatusCode.INTERNAL
    assert "SELECT" not in context.details
    assert "secret" not in context.details
