"""Unit tests of the filter and order_by parsers (``metadata/domain/filter.py``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from modelregistry_server.metadata.domain.errors import InvalidArgument
from modelregistry_server.metadata.domain.filter import (
    MAX_FILTER_DEPTH,
    MAX_FILTER_LENGTH,
    And,
    Compare,
    FieldRef,
    Not,
    Or,
    OrderKey,
    ResourceKind,
    Wildcard,
    parse_filter,
    parse_order_by,
)


def cmp(field: str, op: str, value: object) -> Compare:
    kind, _, key = field.partition(".")
    return Compare(FieldRef(kind, key or None), op, value)  # type: ignore[arg-type]


def v(text: str) -> object:
    return parse_filter(text, "version")


def filter_error(text: str, kind: ResourceKind = "version") -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        parse_filter(text, kind)
    error = info.value
    assert error.field == "filter"
    assert error.reason == "FILTER_INVALID"
    return error


def error_position(text: str, kind: ResourceKind = "version") -> int:
    match = re.search(r" at position (\d+)$", filter_error(text, kind).rule)
    assert match is not None
    return int(match.group(1))


A = cmp("labels.a", "=", "1")
B = cmp("labels.b", "=", "2")
C = cmp("labels.c", "=", "3")

# ---------------------------------------------------------------- structure


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_filter_is_none(text: str) -> None:
    assert parse_filter(text, "model") is None
    assert parse_filter(text, "version") is None


def test_single_comparison() -> None:
    assert v('labels.a = "1"') == A


def test_or_binds_tighter_than_and() -> None:
    assert v("labels.a = 1 AND labels.b = 2 OR labels.c = 3") == And(A, Or(B, C))
    assert v("labels.a = 1 OR labels.b = 2 AND labels.c = 3") == And(Or(A, B), C)


def test_chains_are_left_associative() -> None:
    assert v("labels.a = 1 AND labels.b = 2 AND labels.c = 3") == And(And(A, B), C)
    assert v("labels.a = 1 OR labels.b = 2 OR labels.c = 3") == Or(Or(A, B), C)


def test_parentheses_override_precedence() -> None:
    assert v("(labels.a = 1 AND labels.b = 2) OR labels.c = 3") == Or(And(A, B), C)
    assert v("((labels.a = 1))") == A


def test_not_and_minus_negate_one_term() -> None:
    assert v("NOT labels.a = 1") == Not(A)
    assert v("NOT labels.a = 1 OR labels.b = 2") == Or(Not(A), B)
    assert v("NOT (labels.a = 1 OR labels.b = 2)") == Not(Or(A, B))
    assert v("-labels.a = 1") == Not(A)
    assert v("-(labels.a = 1 AND labels.b = 2)") == Not(And(A, B))
    assert v("NOT NOT labels.a = 1") == Not(Not(A))
    assert v("labels.b = 2 AND -labels.a = 1") == And(B, Not(A))


def test_whitespace_is_optional_around_operators_and_parentheses() -> None:
    assert v("(labels.a=1)AND(labels.b=2)") == And(A, B)
    assert v("metrics.acc>=0.5") == cmp("metrics.acc", ">=", 0.5)


@pytest.mark.parametrize("op", ["=", "!=", "<", "<=", ">", ">="])
def test_every_operator(op: str) -> None:
    assert v(f"metrics.acc {op} 0.5") == cmp("metrics.acc", op, 0.5)
    assert v(f"version {op} 3") == cmp("version", op, 3)
    assert v(f'labels.team {op} "nlp"') == cmp("labels.team", op, "nlp")


# ---------------------------------------------------------------- values and quoting


def test_quoted_strings_and_escapes() -> None:
    assert v(r'labels.q = "say \"hi\""') == cmp("labels.q", "=", 'say "hi"')
    assert v(r'labels.q = "back\\slash"') == cmp("labels.q", "=", "back\\slash")
    assert v('labels.q = "with spaces AND OR ( )"') == cmp(
        "labels.q", "=", "with spaces AND OR ( )"
    )
    assert v('labels.q = ""') == cmp("labels.q", "=", "")
    assert v('labels.q = "ünïcode ✓"') == cmp("labels.q", "=", "ünïcode ✓")


def test_sql_injection_text_is_a_plain_string() -> None:
    assert v('name = "\' OR 1=1 --"') == cmp("name", "=", "' OR 1=1 --")
    assert v('labels.x = "\'; DROP TABLE metadata.models; --"') == cmp(
        "labels.x", "=", "'; DROP TABLE metadata.models; --"
    )


def test_wildcards_only_in_quoted_strings_with_equality() -> None:
    assert v('labels.team = "nl*"') == cmp("labels.team", "=", Wildcard(("nl", "")))
    assert v('labels.team != "*a*b"') == cmp("labels.team", "!=", Wildcard(("", "a", "b")))
    assert v(r'labels.team = "a\*b"') == cmp("labels.team", "=", "a*b")
    # Ordering operators take '*' literally.
    assert v('labels.team < "a*"') == cmp("labels.team", "<", "a*")
    assert v('alias = "prod*"') == cmp("alias", "=", Wildcard(("prod", "")))


def test_bare_words_are_text_for_string_fields() -> None:
    assert v("framework = pytorch") == cmp("framework", "=", "pytorch")
    assert v("labels.epoch = 3") == cmp("labels.epoch", "=", "3")
    assert v("labels.flag = true") == cmp("labels.flag", "=", "true")
    assert v("labels.ver = 1.2.3-rc+1") == cmp("labels.ver", "=", "1.2.3-rc+1")


def test_name_drops_the_models_prefix() -> None:
    assert parse_filter('name = "models/fraud"', "model") == cmp("name", "=", "fraud")
    assert parse_filter("name = fraud", "model") == cmp("name", "=", "fraud")
    assert v('name = "models/fr*"') == cmp("name", "=", Wildcard(("fr", "")))


# ---------------------------------------------------------------- type rules


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("metrics.acc > 1", 1.0),
        ("metrics.acc > -0.5", -0.5),
        ("metrics.acc > 1e-3", 0.001),
        ("metrics.acc > -2.5E+2", -250.0),
        ("metrics.acc > .5", 0.5),
    ],
)
def test_metrics_take_numbers_as_floats(text: str, value: float) -> None:
    result = v(text)
    assert isinstance(result, Compare)
    assert result.value == value
    assert type(result.value) is float


@pytest.mark.parametrize(
    "text",
    ['metrics.acc > "0.9"', "metrics.acc > high", "metrics.acc > true", "metrics.acc > 1e999"],
)
def test_metrics_reject_non_numbers(text: str) -> None:
    assert error_position(text) == 15


def test_version_needs_an_integer() -> None:
    assert v("version = 7") == cmp("version", "=", 7)
    assert "expected an integer" in filter_error("version = 1.5").rule
    assert "expected an integer" in filter_error('version = "3"').rule
    assert "out of range" in filter_error("version = 99999999999999999999").rule


@pytest.mark.parametrize("field", ["create_time", "update_time", "ready_time"])
def test_timestamps_quoted_or_bare(field: str) -> None:
    expected = datetime(2026, 1, 1, tzinfo=UTC)
    assert v(f'{field} >= "2026-01-01T00:00:00Z"') == cmp(field, ">=", expected)
    assert v(f"{field} >= 2026-01-01T00:00:00Z") == cmp(field, ">=", expected)
    assert v(f"{field} >= 2026-01-01T01:30:00+01:30") == cmp(field, ">=", expected)


def test_timestamp_fraction_is_kept_to_the_microsecond() -> None:
    result = v("create_time < 2026-01-01T00:00:00.123456789Z")
    assert result == cmp("create_time", "<", datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC))


@pytest.mark.parametrize(
    "value",
    [
        '"yesterday"',
        "2026-01-01",
        "2026-01-01T00:00:00",  # no offset
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "1700000000",
    ],
)
def test_timestamps_must_be_rfc3339(value: str) -> None:
    error = filter_error(f"create_time > {value}")
    assert "RFC 3339" in error.rule
    assert error.rule.endswith("at position 15")


def test_model_filters_on_times() -> None:
    stamp = datetime(2025, 1, 31, tzinfo=UTC)
    text = 'labels.team = "vision" AND create_time >= "2025-01-31T00:00:00Z"'
    assert parse_filter(text, "model") == And(
        cmp("labels.team", "=", "vision"), cmp("create_time", ">=", stamp)
    )


@pytest.mark.parametrize(
    ("value", "state"),
    [
        ("READY", "READY"),
        ("ready", "READY"),
        ('"Archived"', "ARCHIVED"),
        ("MODEL_VERSION_STATE_FAILED", "FAILED"),
        ("model_version_state_pending", "PENDING"),
        ("DELETED", "DELETED"),
    ],
)
def test_state_values_are_normalized(value: str, state: str) -> None:
    assert v(f"state = {value}") == cmp("state", "=", state)
    assert v(f"state != {value}") == cmp("state", "!=", state)


def test_state_rejects_unknown_values_and_ordering() -> None:
    assert "expected a state" in filter_error("state = DONE").rule
    assert "expected a state" in filter_error("state = MODEL_VERSION_STATE_UNSPECIFIED").rule
    assert error_position("state > READY") == 7


def test_params_are_typed_by_the_value() -> None:
    assert v('params.opt = "adam"') == cmp("params.opt", "=", "adam")
    assert v("params.opt = adam") == cmp("params.opt", "=", "adam")
    assert v('params.opt = "3"') == cmp("params.opt", "=", "3")
    assert v("params.epochs = 10") == cmp("params.epochs", "=", 10)
    assert v("params.lr <= 0.001") == cmp("params.lr", "<=", 0.001)
    assert v("params.amp = true") == cmp("params.amp", "=", True)
    assert v("params.amp != false") == cmp("params.amp", "!=", False)
    assert v('params.amp = "true"') == cmp("params.amp", "=", "true")
    assert v('params.opt > "a"') == cmp("params.opt", ">", "a")
    big = v("params.seed = 123456789012345678901")
    assert isinstance(big, Compare)
    assert big.value == 123456789012345678901
    assert type(big.value) is int


def test_params_booleans_take_equality_only() -> None:
    assert error_position("params.amp < true") == 12


@pytest.mark.parametrize("field", ["owner", "alias", "framework", "format"])
def test_ordering_on_equality_only_strings_is_rejected(field: str) -> None:
    kind: ResourceKind = "model" if field == "owner" else "version"
    text = f'{field} < "x"'
    error = filter_error(text, kind)
    assert f"operator '<' is not supported on {field}" in error.rule
    assert error.rule.endswith(f"at position {len(field) + 2}")


def test_ordering_on_name_and_labels_is_lexicographic() -> None:
    assert parse_filter('name >= "b"', "model") == cmp("name", ">=", "b")
    assert v('labels.tier < "m"') == cmp("labels.tier", "<", "m")


def test_fields_depend_on_the_resource_kind() -> None:
    assert parse_filter('owner = "ana"', "model") == cmp("owner", "=", "ana")
    for text in ["state = READY", "version = 1", "metrics.a > 1", "params.a = 1", 'alias = "x"']:
        error = filter_error(text, "model")
        assert "cannot filter models by" in error.rule
        assert error.rule.endswith("at position 1")
    assert "cannot filter versions by 'owner'" in filter_error('owner = "x"').rule


@pytest.mark.parametrize("key", ["team", "_x", "a.b", "a-b", "A9_.-z", "k" * 200])
def test_map_keys(key: str) -> None:
    assert v(f'labels.{key} = "x"') == cmp(f"labels.{key}", "=", "x")


@pytest.mark.parametrize(("text", "position"), [("labels.9x = 1", 8), ("labels.-x = 1", 8)])
def test_bad_map_keys(text: str, position: int) -> None:
    assert "invalid key" in filter_error(text).rule
    assert error_position(text) == position


def test_map_field_without_key() -> None:
    assert "needs a key" in filter_error("labels = 1").rule
    assert error_position("labels. = 1") == 8


# ---------------------------------------------------------------- errors and positions


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("state = ", 9, "expected a value after '=', found end of filter"),
        ('(name = "a"', 12, "expected ')'"),
        ('metrics.acc > "high"', 15, "expected a number for metrics.acc"),
        ("foo = 1", 1, "unknown field 'foo'"),
        ('name == "x"', 6, "unknown operator '=='"),
        ('name "x"', 6, "expected a comparison operator"),
        ("name", 5, "expected a comparison operator"),
        ('name = "a" AND', 15, "expected a field name, NOT or '('"),
        ('name = "a" OR OR name = "b"', 15, "expected a field name"),
        ('name = "a")', 11, "unexpected ')'"),
        ("()", 2, "expected a field name"),
        ('name = "a" name = "b"', 12, "joined with AND or OR"),
        ('name = "a" and name = "b"', 12, "upper case"),
        ("name = AND", 8, "expected a value"),
        ('name = "abc', 8, "unterminated string"),
        (r'name = "a\nb"', 10, "invalid escape"),
        ("name = 'x'", 8, "double quotes"),
        ('name = "a" ; DROP', 12, "unexpected character ';'"),
        ("name = a*", 9, "wildcard"),
        ('name ! "x"', 6, "unexpected '!'"),
        ("labels.a:b", 9, "has operator"),
        ('"just text"', 1, "text search"),
        ("NOT", 4, "expected a field name"),
        ("version = 1 version = 2", 13, "joined with AND or OR"),
    ],
)
def test_error_positions(text: str, position: int, fragment: str) -> None:
    error = filter_error(text)
    assert fragment in error.rule
    assert error.rule.endswith(f" at position {position}")
    assert error.message == f"filter: {error.rule}"


def test_length_limit() -> None:
    clause = 'labels.a = "x"'
    text = " OR ".join([clause] * 200)[:MAX_FILTER_LENGTH]
    text = text[: text.rfind(" OR ")]
    assert parse_filter(text, "version") is not None
    padded = text + " " * (MAX_FILTER_LENGTH - len(text))
    assert parse_filter(padded, "version") is not None
    error = filter_error(padded + " ")
    assert "longer than" in error.rule
    assert error.rule.endswith(f"at position {MAX_FILTER_LENGTH + 1}")


def test_long_flat_chains_are_not_depth() -> None:
    text = " AND ".join(["version = 1"] * 120)
    assert len(text) <= MAX_FILTER_LENGTH
    assert parse_filter(text, "version") is not None


def test_depth_limit_counts_parentheses_and_not() -> None:
    ok = "(" * MAX_FILTER_DEPTH + "version = 1" + ")" * MAX_FILTER_DEPTH
    assert v(ok) == cmp("version", "=", 1)
    too_deep = "(" + ok + ")"
    assert error_position(too_deep) == MAX_FILTER_DEPTH + 1
    assert "deep" in filter_error(too_deep).rule
    nots = "NOT " * (MAX_FILTER_DEPTH + 1) + "version = 1"
    assert error_position(nots) == 4 * MAX_FILTER_DEPTH + 1
    mixed = "NOT (" * (MAX_FILTER_DEPTH // 2) + "version = 1" + ")" * (MAX_FILTER_DEPTH // 2)
    assert v(mixed) is not None


def test_results_are_hashable_and_frozen() -> None:
    expr = v('labels.a = "1" AND NOT version = 2')
    assert hash(expr) == hash(v('labels.a = "1" AND NOT version = 2'))
    with pytest.raises(AttributeError):
        A.op = "!="  # type: ignore[misc]


# ---------------------------------------------------------------- order_by


def key(field: str, descending: bool = False) -> OrderKey:
    kind, _, k = field.partition(".")
    return OrderKey(FieldRef(kind, k or None), descending)  # type: ignore[arg-type]


def order_error(text: str, kind: ResourceKind = "version") -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        parse_order_by(text, kind)
    error = info.value
    assert error.field == "order_by"
    assert error.reason == "ORDER_BY_INVALID"
    return error


@pytest.mark.parametrize("text", ["", "  "])
def test_empty_order_by(text: str) -> None:
    assert parse_order_by(text, "version") == []


def test_order_by_fields_and_directions() -> None:
    assert parse_order_by("version desc", "version") == [key("version", True)]
    assert parse_order_by("metrics.accuracy DESC, create_time", "version") == [
        key("metrics.accuracy", True),
        key("create_time"),
    ]
    assert parse_order_by(" ready_time asc ,name ", "version") == [key("ready_time"), key("name")]
    assert parse_order_by("params.optimizer desc", "version") == [key("params.optimizer", True)]
    assert parse_order_by("update_time desc, name", "model") == [
        key("update_time", True),
        key("name"),
    ]


@pytest.mark.parametrize(
    ("text", "kind", "position", "fragment"),
    [
        ("owner", "model", 1, "cannot sort models by 'owner'"),
        ("size", "model", 1, "unknown field 'size'"),
        ("labels.team", "model", 1, "cannot sort models by 'labels.<key>'"),
        ("metrics.acc", "model", 1, "cannot sort models by 'metrics.<key>'"),
        ("version", "model", 1, "cannot sort models by 'version'"),
        ("params.lr", "model", 1, "cannot sort models by 'params.<key>'"),
        ("state", "version", 1, "cannot sort versions by 'state'"),
        ("metrics", "version", 1, "needs a key"),
        ("version sideways", "version", 9, "expected asc, desc"),
        ("version desc desc", "version", 14, "expected ',' or end"),
        ("version,", "version", 9, "found nothing"),
        (",version", "version", 1, "found nothing"),
        ("version, create_time, name", "version", 23, "at most 2"),
        ("name, name desc", "version", 7, "listed twice"),
        ("metrics.9", "version", 9, "invalid key"),
    ],
)
def test_order_by_errors(text: str, kind: ResourceKind, position: int, fragment: str) -> None:
    error = order_error(text, kind)
    assert fragment in error.rule
    assert error.rule.endswith(f" at position {position}")
