"""The CLI's argument parsing: flags, typed ``--param`` values, durations and times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelregistry.cli import _serve_arguments
from modelregistry.cli._parser import build_parser
from modelregistry.cli._values import (
    parse_duration,
    parse_metrics,
    parse_pairs,
    parse_params,
    parse_time,
    parse_value,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", 3),
        ("-7", -7),
        ("0.01", 0.01),
        ("1e-3", 0.001),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("adam", "adam"),
        ("3x", "3x"),
        ("", ""),
        ("nan", "nan"),
        ("inf", "inf"),
        ("a=b", "a=b"),
    ],
)
def test_param_values_are_typed(text: str, expected: object) -> None:
    value = parse_value(text)
    assert value == expected
    assert type(value) is type(expected)


def test_params_split_on_the_first_equals_sign() -> None:
    assert parse_params(["lr=0.01", "opt=adam", "expr=a=b", "flag=true"]) == {
        "lr": 0.01,
        "opt": "adam",
        "expr": "a=b",
        "flag": True,
    }
    assert parse_pairs(["team=risk", "team=ml"], "--label") == {"team": "ml"}


@pytest.mark.parametrize("bad", ["lr", "=3", " =3"])
def test_a_pair_without_a_key_is_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_params([bad])


def test_metrics_must_be_numbers() -> None:
    assert parse_metrics(["auc=0.9", "n=3"]) == {"auc": 0.9, "n": 3.0}
    with pytest.raises(ValueError, match="auc must be a number"):
        parse_metrics(["auc=high"])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("48h", 48 * 3600), ("2d", 172800), ("1h30m", 5400), ("90s", 90), ("3600", 3600),
     ("1w", 604800), ("1.5h", 5400)],
)  # fmt: skip
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "h", "48x", "1h 30", "abc", "-1h"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)


def test_times_with_and_without_zone() -> None:
    assert parse_time("2025-01-31T12:00:00Z") == datetime(2025, 1, 31, 12, tzinfo=UTC)
    local = parse_time("2025-01-31")
    assert local.tzinfo is not None
    assert local.replace(tzinfo=None) == datetime(2025, 1, 31)
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time("yesterday")


def test_global_flags_work_before_and_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["--json", "--url", "h:1", "--timeout", "3", "ls"])
    after = parser.parse_args(["ls", "--json", "--url", "h:1", "--timeout", "3"])
    for args in (before, after):
        assert (args.json, args.url, args.timeout) == (True, "h:1", 3.0)
    plain = parser.parse_args(["ls"])
    assert (plain.json, plain.url, plain.timeout, plain.debug, plain.quiet) == (
        False,
        None,
        30.0,
        False,
        False,
    )


def test_push_flags() -> None:
    args = build_parser().parse_args(
        ["push", "a", "b", "-m", "m", "--param", "lr=1", "--param", "x=y", "--metric", "auc=1",
         "--label", "t=r", "--alias", "staging", "--no-lineage", "--parallel", "8", "-q"]
    )  # fmt: skip
    assert args.paths == ["a", "b"]
    assert args.model == "m"
    assert args.param == ["lr=1", "x=y"]
    assert args.metric == ["auc=1"]
    assert args.label == ["t=r"]
    assert (args.alias, args.no_lineage, args.parallel, args.quiet) == ("staging", True, 8, True)
    assert args.no_direct_upload is False
    again = build_parser().parse_args(["push", "a", "-m", "m", "--no-direct-upload"])
    assert again.no_direct_upload is True


def test_push_needs_a_model_and_one_description(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["push", "a"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["push", "a", "-m", "m", "--description", "x", "--description-file", "f"])
    assert "not allowed with" in capsys.readouterr().err


def test_pull_versions_log_gc_and_alias_flags() -> None:
    parser = build_parser()
    pull = parser.parse_args(
        ["pull", "m@prod", "--dest", "d", "--include", "*.bin", "--include", "*.json",
         "--exclude", "x*", "--parallel", "2"]
    )  # fmt: skip
    assert (pull.ref, pull.dest, pull.include, pull.exclude) == (
        "m@prod",
        "d",
        ["*.bin", "*.json"],
        ["x*"],
    )
    versions = parser.parse_args(["versions", "m", "--filter", "state = READY", "--limit", "5"])
    assert (versions.model, versions.filter, versions.limit) == ("m", "state = READY", 5)
    log = parser.parse_args(["log", "--actor", "alice", "--since", "2025-01-01"])
    assert (log.model, log.actor, log.since, log.until, log.limit) == (
        "",
        "alice",
        "2025-01-01",
        None,
        50,
    )
    gc = parser.parse_args(["gc", "--dry-run", "--grace-period", "72h"])
    assert (gc.dry_run, gc.grace_period) == (True, "72h")
    alias = parser.parse_args(["alias", "set", "m", "production", "3", "--json"])
    assert (alias.alias_command, alias.model, alias.alias, alias.version, alias.json) == (
        "set",
        "m",
        "production",
        3,
        True,
    )


@pytest.mark.parametrize(
    "argv",
    [["ls", "--limit", "0"], ["alias", "set", "m", "a", "x"], ["--timeout", "-1", "ls"],
     ["pull", "m", "--parallel", "0"], ["nope"], []],
)  # fmt: skip
def test_bad_values_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2


@pytest.mark.parametrize(
    "command",
    ["push", "pull", "ls", "show", "versions", "alias", "diff", "log", "gc", "serve"],
)
def test_every_command_has_help_with_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([command, "--help"])
    assert exc.value.code == 0
    assert "example:" in capsys.readouterr().out


def test_main_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    for line in ("exit codes:", "3    not found", "5    unavailable", "130  interrupted"):
        assert line in out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["serve"], []),
        (["serve", "--listen", "0.0.0.0:1", "metadata"], ["--listen", "0.0.0.0:1", "metadata"]),
        (["--url", "serve", "ls"], None),
        (["--debug", "serve", "-h"], ["-h"]),
        (["ls", "serve"], None),
        (["show", "serve"], None),
        ([], None),
    ],
)
def test_serve_is_found_before_argparse(argv: list[str], expected: list[str] | None) -> None:
    assert _serve_arguments(argv) == expected
