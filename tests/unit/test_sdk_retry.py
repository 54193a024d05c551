"""Transport retries and error translation, with fake stub methods (no network)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from modelregistry import _transport
from modelregistry._transport import AsyncTransport, RetryPolicy, Transport
from modelregistry.errors import (
    AlreadyExistsError,
    ConflictError,
    DeadlineExceededError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    RegistryError,
    ResourceExhaustedError,
    UnavailableError,
    from_rpc_error,
)
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_pb2

pytestmark = pytest.mark.timeout(10)
FAST = RetryPolicy(max_attempts=5, initial_backoff_s=0.0, max_backoff_s=0.0)


def status_trailer(
    code: grpc.StatusCode,
    message: str,
    reason: str,
    metadata: dict[str, str],
    *,
    domain: str = "modelregistry",
    retry_delay_s: float | None = None,
) -> tuple[tuple[str, bytes], ...]:
    """The ``grpc-status-details-bin`` trailer a server sends with an ErrorInfo (if ``reason``)
    and a RetryInfo (if ``retry_delay_s``)."""
    details = []
    if reason:
        info = any_pb2.Any()
        info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=domain, metadata=metadata))
        details.append(info)
    if retry_delay_s is not None:
        retry = any_pb2.Any()
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(round(retry_delay_s * 1e9))
        retry.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        details.append(retry)
    status = status_pb2.Status(code=code.value[0], message=message, details=details)
    return (("grpc-status-details-bin", status.SerializeToString()),)


class FakeRpcError(grpc.RpcError, grpc.Call):
    """What a failed sync stub call raises: an RpcError that is also a grpc.Call."""

    def __init__(
        self,
        code: grpc.StatusCode,
        details: str = "",
        reason: str = "",
        *,
        domain: str = "modelregistry",
        retry_delay_s: float | None = None,
        **metadata: str,
    ) -> None:
        super().__init__(details)
        self._code = code
        self._details = details
        self._trailers = (
            status_trailer(
                code, details, reason, metadata, domain=domain, retry_delay_s=retry_delay_s
            )
            if reason or retry_delay_s is not None
            else ()
        )

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Any:
        return self._trailers

    def initial_metadata(self) -> Any:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float:
        return 0.0

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False


def unavailable() -> FakeRpcError:
    return FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses")


class FakeMethod:
    """A unary stub method that raises the given errors in turn, then returns ``result``."""

    def __init__(self, errors: Sequence[Exception], result: Any = None) -> None:
        self.errors = list(errors)
        self.result = result
        self.calls: list[tuple[Any, float | None, Any]] = []

    def __call__(self, request: Any, *, timeout: float | None = None, metadata: Any = None) -> Any:
        self.calls.append((request, timeout, metadata))
        if self.errors:
            raise self.errors.pop(0)
        return self.result

    async def call_async(self, request: Any, **kwargs: Any) -> Any:
        return self(request, **kwargs)


@pytest.fixture
def transport() -> Any:
    t = Transport("127.0.0.1:1", retry=FAST, token="tok-1", timeout=7.0)
    yield t
    t.close()


def test_unavailable_is_retried_then_succeeds(transport: Transport) -> None:
    model = model_pb2.Model(name="models/m")
    method = FakeMethod([unavailable(), unavailable()], model)
    request = ms.CreateModelRequest(model_id="m", request_id="r-1")
    assert transport.unary(method, request) == model
    assert len(method.calls) == 3
    # The very same request (same request_id) is resent, with the deadline and the token.
    assert all(call[0] is request for call in method.calls)
    assert all(call[1] == 7.0 for call in method.calls)
    assert all(call[2] == (("authorization", "Bearer tok-1"),) for call in method.calls)


def test_unavailable_gives_up_after_max_attempts(transport: Transport) -> None:
    method = FakeMethod([unavailable() for _ in range(10)])
    with pytest.raises(UnavailableError) as info:
        transport.unary(method, ms.GetModelRequest(name="models/m"))
    assert len(method.calls) == 5
    assert info.value.exit_code == 5
    assert "127.0.0.1:1" in info.value.message  # says where it tried


def test_a_per_call_policy_overrides_the_default(transport: Transport) -> None:
    method = FakeMethod([unavailable() for _ in range(3)])
    with pytest.raises(UnavailableError):
        transport.unary(method, ms.GetModelRequest(), retry=_transport.NO_RETRY)
    assert len(method.calls) == 1


@pytest.mark.parametrize(
    ("code", "reason", "cls", "exit_code"),
    [
        (grpc.StatusCode.NOT_FOUND, "MODEL_NOT_FOUND", NotFoundError, 3),
        (grpc.StatusCode.INVALID_ARGUMENT, "REFERENCE_INVALID", InvalidArgumentError, 2),
        (grpc.StatusCode.ALREADY_EXISTS, "MODEL_ALREADY_EXISTS", AlreadyExistsError, 4),
        (grpc.StatusCode.ABORTED, "ETAG_MISMATCH", ConflictError, 4),
        (grpc.StatusCode.FAILED_PRECONDITION, "VERSION_NOT_READY", FailedPreconditionError, 4),
        (grpc.StatusCode.INTERNAL, "", InternalError, 1),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "", DeadlineExceededError, 5),
    ],
)
def test_other_errors_are_not_retried_and_are_typed(
    transport: Transport,
    code: grpc.StatusCode,
    reason: str,
    cls: type[RegistryError],
    exit_code: int,
) -> None:
    error = FakeRpcError(code, "the server's sentence", reason, resource="models/m")
    method = FakeMethod([error], model_pb2.Model())
    with pytest.raises(cls) as info:
        transport.unary(method, ms.GetModelRequest(name="models/m"))
    assert len(method.calls) == 1
    assert type(info.value) is cls
    assert info.value.code == code
    assert info.value.reason == reason
    assert info.value.exit_code == exit_code
    if reason:
        assert info.value.message == "the server's sentence"
        assert info.value.metadata == {"resource": "models/m"}
    assert info.value.__cause__ is None  # no gRPC internals chained into the traceback


def test_unavailable_with_a_reason_keeps_the_server_message() -> None:
    error = FakeRpcError(grpc.StatusCode.UNAVAILABLE, "database down", "DATABASE_UNAVAILABLE")
    translated = from_rpc_error(error, "h:1")
    assert isinstance(translated, UnavailableError)
    assert translated.reason == "DATABASE_UNAVAILABLE"
    assert translated.message == "database down"


def test_a_status_detail_that_contradicts_the_code_is_ignored() -> None:
    error = FakeRpcError(grpc.StatusCode.NOT_FOUND, "gone", "MODEL_NOT_FOUND")
    error._code = grpc.StatusCode.INTERNAL  # trailer still says NOT_FOUND
    translated = from_rpc_error(error)
    assert isinstance(translated, InternalError)
    assert translated.reason == ""


def test_a_plain_rpc_error_without_a_status_is_a_registry_error() -> None:
    translated = from_rpc_error(grpc.RpcError("boom"))
    assert type(translated) is RegistryError
    assert translated.exit_code == 1


def aio_error(code: grpc.StatusCode, details: str, reason: str = "") -> grpc.aio.AioRpcError:
    trailers = status_trailer(code, details, reason, {"resource": "models/m"}) if reason else ()
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailers), details, None
    )


def test_aio_errors_are_typed_with_their_reason() -> None:
    # AioRpcError is not a grpc.Call; it must still map to the right class and reason.
    translated = from_rpc_error(aio_error(grpc.StatusCode.NOT_FOUND, "no m", "MODEL_NOT_FOUND"))
    assert isinstance(translated, NotFoundError)
    assert translated.reason == "MODEL_NOT_FOUND"
    assert translated.metadata == {"resource": "models/m"}


async def test_async_transport_retries_unavailable_only() -> None:
    transport = AsyncTransport("127.0.0.1:1", retry=FAST, token="tok-1")
    try:
        model = model_pb2.Model(name="models/m")
        flaky = FakeMethod(
            [aio_error(grpc.StatusCode.UNAVAILABLE, "connection refused")] * 2, model
        )
        assert await transport.unary(flaky.call_async, ms.GetModelRequest()) == model
        assert len(flaky.calls) == 3
        missing = FakeMethod([aio_error(grpc.StatusCode.NOT_FOUND, "no", "MODEL_NOT_FOUND")])
        with pytest.raises(NotFoundError) as info:
            await transport.unary(missing.call_async, ms.GetModelRequest())
        assert len(missing.calls) == 1
        assert info.value.reason == "MODEL_NOT_FOUND"
    finally:
        await transport.close()


def test_backoff_is_jittered_exponential_and_capped() -> None:
    policy = RetryPolicy(max_attempts=6, initial_backoff_s=1.0, max_backoff_s=4.0, multiplier=2.0)
    for _ in range(50):
        delays = list(policy.backoffs())
        assert len(delays) == 5  # one sleep before each retry
        for delay, ceiling in zip(delays, [1.0, 2.0, 4.0, 4.0, 4.0], strict=True):
            assert 0.0 <= delay <= ceiling


# ---------------------------------------------------------------- RESOURCE_EXHAUSTED


def limit_reached(retry_delay_s: float | None = None) -> FakeRpcError:
    """The registry's answer when a per-caller limit is reached."""
    return FakeRpcError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "too many concurrent streams for alice (limit 8)",
        "TOO_MANY_STREAMS",
        retry_delay_s=retry_delay_s,
        limit="8",
    )


def too_large() -> FakeRpcError:
    """What gRPC itself raises for a message over the size limit: no ErrorInfo."""
    return FakeRpcError(
        grpc.StatusCode.RESOURCE_EXHAUSTED, "Received message larger than max (9000000 vs. 8388608)"
    )


class Sleeps(list[float]):
    """Records the pauses between attempts instead of sleeping them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps(transport: Transport) -> Sleeps:
    recorded = Sleeps()
    transport._sleep = recorded
    return recorded


def test_the_registrys_resource_exhausted_is_retried_then_succeeds(
    transport: Transport, sleeps: Sleeps
) -> None:
    model = model_pb2.Model(name="models/m")
    method = FakeMethod([limit_reached(), limit_reached()], model)
    request = ms.CreateModelRequest(model_id="m", request_id="r-1")
    assert transport.unary(method, request) == model
    assert len(method.calls) == 3
    assert all(call[0] is request for call in method.calls)  # the same request_id
    assert len(sleeps) == 2


def test_the_retry_info_delay_is_honoured(transport: Transport, sleeps: Sleeps) -> None:
    method = FakeMethod([limit_reached(2.5), limit_reached(0.75)], model_pb2.Model())
    transport.unary(method, ms.GetModelRequest(name="models/m"))
    # FAST's own backoff is 0: each pause is what the server asked for, no less.
    assert sleeps == [2.5, 0.75]


def test_the_longer_of_hint_and_backoff_wins_capped_at_the_longest_pause() -> None:
    assert _transport.retry_pause(from_rpc_error(limit_reached(1.0)), 2.0) == 2.0
    assert _transport.retry_pause(from_rpc_error(limit_reached(5.0)), 2.0) == 5.0
    assert _transport.retry_pause(from_rpc_error(limit_reached()), 0.3) == 0.3
    assert _transport.retry_pause(from_rpc_error(limit_reached(3600.0)), 0.3) == 30.0
    assert _transport.retry_pause(from_rpc_error(limit_reached(3600.0)), 0.3, cap=4.0) == 4.0


def test_a_long_hint_is_capped_and_the_pauses_stay_within_the_budget(transport: Transport) -> None:
    sleeps = Sleeps()
    transport._sleep = sleeps
    policy = RetryPolicy(
        max_attempts=10,
        initial_backoff_s=0.0,
        max_backoff_s=0.0,
        max_retry_delay_s=4.0,
        max_total_delay_s=10.0,
    )
    method = FakeMethod([limit_reached(3600.0) for _ in range(10)])
    with pytest.raises(ResourceExhaustedError) as info:
        transport.unary(method, ms.GetModelRequest(name="models/m"), retry=policy)
    # 4 + 4 + the 2 s left of the budget, then one last attempt, then the error.
    assert sleeps == [4.0, 4.0, 2.0]
    assert len(method.calls) == 4
    assert info.value.reason == "TOO_MANY_STREAMS"
    assert info.value.retry_delay_s == 3600.0
    assert info.value.message == "too many concurrent streams for alice (limit 8)"
    assert info.value.__cause__ is None


def test_resource_exhausted_gives_up_after_max_attempts(
    transport: Transport, sleeps: Sleeps
) -> None:
    method = FakeMethod([limit_reached() for _ in range(10)])
    with pytest.raises(ResourceExhaustedError) as info:
        transport.unary(method, ms.GetModelRequest(name="models/m"))
    assert len(method.calls) == 5
    assert info.value.domain == "modelregistry"
    assert info.value.metadata == {"limit": "8"}


def test_a_retry_info_alone_makes_resource_exhausted_retryable(
    transport: Transport, sleeps: Sleeps
) -> None:
    bare_hint = FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", retry_delay_s=0.5)
    method = FakeMethod([bare_hint], model_pb2.Model())
    transport.unary(method, ms.GetModelRequest())
    assert len(method.calls) == 2
    assert sleeps == [0.5]


def test_a_message_over_the_size_limit_is_not_retried(transport: Transport, sleeps: Sleeps) -> None:
    method = FakeMethod([too_large(), too_large()], model_pb2.Model())
    with pytest.raises(ResourceExhaustedError) as info:
        transport.unary(method, ms.GetModelRequest())
    assert len(method.calls) == 1
    assert sleeps == []
    assert info.value.domain == ""
    assert "larger than max" in info.value.message


def test_resource_exhausted_of_another_domain_is_not_retried(
    transport: Transport, sleeps: Sleeps
) -> None:
    proxy = FakeRpcError(
        grpc.StatusCode.RESOURCE_EXHAUSTED, "quota", "RATE_LIMITED", domain="proxy.example"
    )
    method = FakeMethod([proxy], model_pb2.Model())
    with pytest.raises(ResourceExhaustedError):
        transport.unary(method, ms.GetModelRequest())
    assert len(method.calls) == 1


def test_invalid_argument_is_never_retried_even_with_a_retry_hint(
    transport: Transport, sleeps: Sleeps
) -> None:
    error = FakeRpcError(
        grpc.StatusCode.INVALID_ARGUMENT, "bad name", "FIELD_INVALID", retry_delay_s=0.1
    )
    method = FakeMethod([error], model_pb2.Model())
    with pytest.raises(InvalidArgumentError):
        transport.unary(method, ms.GetModelRequest())
    assert len(method.calls) == 1
    assert sleeps == []


def test_unavailable_honours_a_retry_hint_too(transport: Transport, sleeps: Sleeps) -> None:
    draining = FakeRpcError(
        grpc.StatusCode.UNAVAILABLE, "shutting down", "SERVER_DRAINING", retry_delay_s=1.5
    )
    method = FakeMethod([draining], model_pb2.Model())
    transport.unary(method, ms.GetModelRequest())
    assert sleeps == [1.5]


def test_retry_info_is_read_from_the_status_details() -> None:
    translated = from_rpc_error(limit_reached(0.25))
    assert isinstance(translated, ResourceExhaustedError)
    assert translated.retry_delay_s == 0.25
    assert translated.reason == "TOO_MANY_STREAMS"
    negative = FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "x", "L", retry_delay_s=-3.0)
    assert from_rpc_error(negative).retry_delay_s == 0.0
    assert from_rpc_error(too_large()).retry_delay_s is None


async def test_async_transport_retries_the_registrys_resource_exhausted() -> None:
    transport = AsyncTransport("127.0.0.1:1", retry=FAST, token="tok-1")
    sleeps = Sleeps()
    transport._sleep = sleeps.async_sleep
    try:
        trailers = status_trailer(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "too many",
            "TOO_MANY_STREAMS",
            {},
            retry_delay_s=1.25,
        )
        limit = grpc.aio.AioRpcError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.aio.Metadata(),
            grpc.aio.Metadata(*trailers),
            "too many",
            None,
        )
        model = model_pb2.Model(name="models/m")
        flaky = FakeMethod([limit], model)
        assert await transport.unary(flaky.call_async, ms.GetModelRequest()) == model
        assert sleeps == [1.25]
        huge = FakeMethod(
            [aio_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "Received message larger than max")]
        )
        with pytest.raises(ResourceExhaustedError):
            await transport.unary(huge.call_async, ms.GetModelRequest())
        assert len(huge.calls) == 1
    finally:
        await transport.close()
