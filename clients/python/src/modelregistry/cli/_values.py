"""Pure helpers of the CLI's input: typed ``k=v`` flags (``--param``, ``--metric``,
``--label``), durations and times. Nothing here does I/O, so all of it is unit-tested
directly."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta

from modelregistry._convert import ParamPyValue


def parse_value(text: str) -> ParamPyValue:
    """A ``--param`` value: an int, else a float, else ``true``/``false``, else the string.

    ``"3"`` is 3, ``"0.01"`` and ``"1e-3"`` are floats, ``"true"``/``"False"`` are booleans
    (case-insensitive), and anything else (``"adam"``, ``"3x"``, ``""``) stays a string.
    """
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        # "nan"/"inf" parse as floats; keep them strings unless clearly numeric.
        if text.strip().lower().lstrip("+-") not in {"nan", "inf", "infinity"}:
            return value
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return text


def split_pair(text: str, flag: str) -> tuple[str, str]:
    """``"k=v"`` → ``("k", "v")``; a missing ``=`` or an empty key is a ``ValueError``."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"{flag} expects KEY=VALUE, got {text!r}")
    return key, value


def parse_pairs(items: Iterable[str], flag: str) -> dict[str, str]:
    """Repeated ``KEY=VALUE`` flags into a dict (a repeated key keeps the last value)."""
    return dict(split_pair(item, flag) for item in items)


def parse_params(items: Iterable[str]) -> dict[str, ParamPyValue]:
    """``--param`` flags with typed values (see :func:`parse_value`)."""
    return {key: parse_value(value) for key, value in parse_pairs(items, "--param").items()}


def parse_metrics(items: Iterable[str]) -> dict[str, float]:
    """``--metric`` flags: every value must be a number."""
    metrics: dict[str, float] = {}
    for key, value in parse_pairs(items, "--metric").items():
        try:
            metrics[key] = float(value)
        except ValueError:
            raise ValueError(f"--metric {key} must be a number, got {value!r}") from None
    return metrics


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``"48h"``, ``"2d"``, ``"1h30m"``, ``"90s"`` or plain seconds (``"3600"``)."""
    stripped = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", stripped):
        return timedelta(seconds=float(stripped))
    pos, total = 0, 0.0
    for match in _DURATION.finditer(stripped):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        pos = match.end()
    if pos == 0 or pos != len(stripped):
        raise ValueError(f"not a duration: {text!r} (use e.g. 48h, 2d, 1h30m or seconds)")
    return timedelta(seconds=total)


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or date-time; without a zone it is local time."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"not an ISO 8601 time: {text!r} (e.g. 2025-01-31 or 2025-01-31T12:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # naive = local time
    return moment
