"""``--stream-window-mib``: a fixed HTTP/2 window bounds what each upload buffers in gRPC."""

from __future__ import annotations

import pytest

from modelregistry_server.common.config import ConfigError, load_config
from modelregistry_server.common.rpc.options import server_options

MIB = 1024 * 1024


def _options(argv: list[str], environ: dict[str, str] | None = None) -> dict[str, int]:
    config = load_config(["serve", *argv], environ=environ or {})
    return dict(server_options(config.limits, 4 * MIB))


def test_the_default_is_a_fixed_2_mib_window() -> None:
    options = _options([])
    assert options["grpc.http2.bdp_probe"] == 0
    assert options["grpc.http2.lookahead_bytes"] == 2 * MIB


def test_the_flag_and_the_environment_set_it() -> None:
    assert _options(["--stream-window-mib=8"])["grpc.http2.lookahead_bytes"] == 8 * MIB
    env = {"MODELREGISTRY_STREAM_WINDOW_MIB": "1"}
    assert _options([], env)["grpc.http2.lookahead_bytes"] == MIB


def test_zero_leaves_the_window_to_grpc() -> None:
    options = _options(["--stream-window-mib=0"])
    assert "grpc.http2.bdp_probe" not in options
    assert "grpc.http2.lookahead_bytes" not in options


@pytest.mark.parametrize("value", ["-1", "2048", "lots"])
def test_a_bad_window_is_refused_with_the_flag_named(value: str) -> None:
    with pytest.raises(ConfigError, match="--stream-window-mib must be MiB up to 1024"):
        load_config(["serve", f"--stream-window-mib={value}"], environ={})
