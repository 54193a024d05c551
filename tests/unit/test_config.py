"""Unit tests of configuration parsing and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelregistry_server.common.config import ConfigError, load_config


def test_defaults_are_the_embedded_registry() -> None:
    config = load_config(["serve"], environ={})
    assert config.services == "all"
    assert config.listen == "127.0.0.1:50051"
    assert config.embedded_database
    assert config.s3 is None
    assert config.data_dir == Path(".modelregistry").resolve()


def test_environment_fills_unset_flags_and_flags_win() -> None:
    env = {"MODELREGISTRY_LISTEN": "127.0.0.1:7000", "MODELREGISTRY_LOG_LEVEL": "debug"}
    config = load_config(["serve", "--listen=127.0.0.1:8000"], environ=env)
    assert config.listen == "127.0.0.1:8000"
    assert config.log_level == "DEBUG"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(
            ["serve", "--listen=nope", "--database-url=mysql://x", "--s3-endpoint=http://h:9000"],
            environ={},
        )
    message = str(info.value)
    assert "--listen" in message
    assert "--database-url" in message
    assert "--s3-access-key" in message
    assert "without a scheme" in message


def test_metadata_alone_needs_the_artifact_service() -> None:
    with pytest.raises(ConfigError, match="--artifact-service-url"):
        load_config(["serve", "metadata"], environ={})


def test_s3_settings_are_collected() -> None:
    config = load_config(
        ["serve", "--s3-endpoint=127.0.0.1:9000", "--s3-access-key=a", "--s3-secret-key=b"],
        environ={"MODELREGISTRY_S3_BUCKET": "models"},
    )
    assert config.s3 is not None
    assert (config.s3.endpoint, config.s3.bucket, config.s3.secure) == (
        "127.0.0.1:9000",
        "models",
        False,
    )


def test_bad_shutdown_grace_is_rejected() -> None:
    with pytest.raises(ConfigError, match="--shutdown-grace"):
        load_config(["serve", "--shutdown-grace=-1"], environ={})


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--upload-part-size", "16.5"),
        ("--upload-part-size", "4"),
        ("--upload-part-size", "lots"),
        ("--upload-parts-in-flight", "1.5"),
        ("--upload-parts-in-flight", "17"),
    ],
)
def test_upload_tuning_must_be_whole_numbers_in_range(flag: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"{flag} must be a whole number"):
        load_config(["serve", f"{flag}={value}"], environ={})


def test_whole_upload_tuning_written_as_a_float_is_accepted() -> None:
    config = load_config(["serve", "--upload-part-size=32.0"], environ={})
    assert config.upload_part_size_mib == 32
