"""The SDK's and the server's reference parsers accept exactly the same strings.

Both run over the shared tables in ``tests/support/refs.py``: a string one side accepts and the
other rejects fails here, whichever side changed.
"""

from __future__ import annotations

import pytest

from modelregistry import _refs
from modelregistry.errors import InvalidArgumentError
from modelregistry_server.metadata.domain import version as server
from modelregistry_server.metadata.domain.errors import InvalidArgument
from tests.support.refs import (
    ACCEPTED_REFS,
    ACCEPTED_VERSION_NUMBERS,
    REJECTED_REFS,
    REJECTED_VERSION_NUMBERS,
    AcceptedRef,
)


def _server_parse(ref: str) -> tuple[str, str, str]:
    """The server's parse in the table's ``(model, kind, value)`` shape."""
    parsed = server.parse_ref(ref)
    if parsed.uid_or_model is not None:
        return "", "uid", parsed.uid_or_model
    if parsed.alias is not None:
        return parsed.model_id, "alias", parsed.alias
    if parsed.number is not None:
        return parsed.model_id, "version", str(parsed.number)
    return parsed.model_id, "latest", ""


@pytest.mark.parametrize("case", ACCEPTED_REFS, ids=lambda case: repr(case.ref))
def test_the_sdk_parses_every_accepted_ref_as_the_table_says(case: AcceptedRef) -> None:
    parsed = _refs.parse_ref(case.ref)
    assert tuple(parsed) == (case.model, case.kind, case.value)
    model, kind, value = parsed  # it unpacks as (model, kind, value)
    assert (model, kind, value) == (case.model, case.kind, case.value)
    assert parsed.canonical == case.canonical


@pytest.mark.parametrize("case", ACCEPTED_REFS, ids=lambda case: repr(case.ref))
def test_the_server_parses_every_accepted_ref_as_the_table_says(case: AcceptedRef) -> None:
    assert _server_parse(case.ref) == (case.model, case.kind, case.value)


@pytest.mark.parametrize("ref", REJECTED_REFS, ids=repr)
def test_the_sdk_rejects_every_rejected_ref(ref: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        _refs.parse_ref(ref)
    assert info.value.reason == "REFERENCE_INVALID"
    assert info.value.exit_code == 2
    assert "name@alias" in info.value.message  # says what would have been accepted


@pytest.mark.parametrize("ref", REJECTED_REFS, ids=repr)
def test_the_server_rejects_every_rejected_ref(ref: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        server.parse_ref(ref)
    assert info.value.reason == "REFERENCE_INVALID"
    assert "name@alias" in str(info.value)


@pytest.mark.parametrize(("text", "number"), ACCEPTED_VERSION_NUMBERS)
def test_both_sides_read_accepted_version_numbers_alike(text: str, number: int) -> None:
    assert _refs.parse_version_number(text) == number
    assert server.parse_version_number(text) == number
    assert server.parse_version_name(f"models/m/versions/{text}") == ("m", number)


@pytest.mark.parametrize("text", REJECTED_VERSION_NUMBERS, ids=repr)
def test_both_sides_reject_what_is_not_a_version_number(text: str) -> None:
    assert _refs.parse_version_number(text) is None
    assert server.parse_version_number(text) is None
    with pytest.raises(InvalidArgument):
        server.parse_version_name(f"models/m/versions/{text}")
