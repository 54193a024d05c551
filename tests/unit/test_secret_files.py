"""MODELREGISTRY_<SETTING>_FILE: secrets mounted as files (compose secrets, Kubernetes volumes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelregistry_server.__main__ import main
from modelregistry_server.common.config import ConfigError, load_config
from modelregistry_server.common.secret_files import with_secret_files


def test_each_secret_setting_is_read_from_its_file_without_the_trailing_newline(
    tmp_path: Path,
) -> None:
    (tmp_path / "url").write_text("postgresql://registry:pw@db:5432/registry\n")
    (tmp_path / "key").write_text("secret-key")
    env = with_secret_files(
        {
            "MODELREGISTRY_DATABASE_URL_FILE": str(tmp_path / "url"),
            "MODELREGISTRY_S3_SECRET_KEY_FILE": str(tmp_path / "key"),
            "MODELREGISTRY_S3_ENDPOINT": "minio:9000",
            "MODELREGISTRY_S3_ACCESS_KEY": "access",
        }
    )
    config = load_config(["serve"], env)
    assert config.database_url == "postgresql://registry:pw@db:5432/registry"
    assert config.s3 is not None
    assert config.s3.secret_key == "secret-key"
    assert "MODELREGISTRY_DATABASE_URL_FILE" not in env


def test_a_missing_or_empty_file_and_a_doubly_given_secret_are_all_reported(
    tmp_path: Path,
) -> None:
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError) as caught:
        with_secret_files(
            {
                "MODELREGISTRY_DATABASE_URL_FILE": str(tmp_path / "absent"),
                "MODELREGISTRY_S3_SECRET_KEY_FILE": str(tmp_path / "empty"),
                "MODELREGISTRY_ARTIFACT_SERVICE_TOKEN": "t",
                "MODELREGISTRY_ARTIFACT_SERVICE_TOKEN_FILE": str(tmp_path / "empty"),
            }
        )
    message = str(caught.value)
    assert "MODELREGISTRY_DATABASE_URL_FILE" in message
    assert "cannot be read" in message
    assert "MODELREGISTRY_S3_SECRET_KEY_FILE" in message
    assert "both set" in message


def test_the_server_refuses_to_start_on_an_unreadable_secret_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MODELREGISTRY_DATABASE_URL_FILE", str(tmp_path / "absent"))
    assert main(["serve"]) == 2
    assert "MODELREGISTRY_DATABASE_URL_FILE" in capsys.readouterr().err
