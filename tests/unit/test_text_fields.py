"""Control characters in any text field of a request are refused, with the field named."""

from __future__ import annotations

import pytest

from modelregistry.access.v1 import access_service_pb2 as acc
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_pb2, model_version_pb2
from modelregistry_server.common.rpc.text_fields import control_character_error


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\x9b", "\n", "\t", "\r"])
def test_single_line_fields_refuse_every_control_character(char: str) -> None:
    error = control_character_error(ms.GetModelRequest(name=f"models/a{char}b"))
    assert error is not None
    assert error.field == "name"
    assert f"U+{ord(char):04X}" in error.rule


def test_label_values_and_keys_are_checked_inside_maps() -> None:
    request = ms.CreateModelRequest(
        model_id="m", model=model_pb2.Model(labels={"stage": "prod\x1b[2J"})
    )
    error = control_character_error(request)
    assert error is not None
    assert error.field == "model.labels['stage']"
    request = ms.CreateModelRequest(model_id="m", model=model_pb2.Model(labels={"a\x00": "v"}))
    error = control_character_error(request)
    assert error is not None
    assert error.field == "model.labels key"


def test_repeated_and_nested_messages_are_checked() -> None:
    files = [
        model_version_pb2.ManifestFile(path="a", sha256="0" * 64),
        model_version_pb2.ManifestFile(path="b", sha256="0" * 64, media_type="x\x07"),
    ]
    error = control_character_error(
        ms.CommitModelVersionRequest(name="models/m/versions/1", files=files)
    )
    assert error is not None
    assert error.field == "files[1].media_type"


def test_param_string_values_are_checked() -> None:
    version = model_version_pb2.ModelVersion(
        params={"lr": model_version_pb2.ParamValue(string_value="1e-3\x00")}
    )
    error = control_character_error(ms.CreateModelVersionRequest(model_version=version))
    assert error is not None
    assert error.field == "model_version.params['lr'].string_value"


def test_descriptions_and_filters_may_span_lines_but_hold_no_other_controls() -> None:
    card = "# Model\n\n| a\t| b |\r\n"
    request = ms.CreateModelRequest(model=model_pb2.Model(description=card))
    assert control_character_error(request) is None
    assert control_character_error(ms.ListModelsRequest(filter="labels.a = 'x'\nAND 1")) is None
    error = control_character_error(acc.CreateAccessTokenRequest(description="ok\x1b"))
    assert error is not None
    assert error.field == "description"
    assert "line breaks are allowed" in error.rule


def test_manifest_paths_and_refs_are_left_to_their_own_rules() -> None:
    # Their own checks answer with MANIFEST_INVALID / REFERENCE_INVALID.
    files = [model_version_pb2.ManifestFile(path="a\x00", sha256="0" * 64)]
    assert control_character_error(ms.CommitModelVersionRequest(files=files)) is None
    assert control_character_error(ms.ResolveModelVersionRequest(ref="m\n")) is None


def test_clean_requests_pass() -> None:
    request = ms.CreateModelRequest(
        model_id="fraud", model=model_pb2.Model(description="é ✓ 模型", labels={"a": "b"})
    )
    assert control_character_error(request) is None
