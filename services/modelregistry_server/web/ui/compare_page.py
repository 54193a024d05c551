"""The compare page (``/compare?model=<m>&v=1&v=3``): 2 to 4 versions of a model side by side.

The address holds the whole selection, so a comparison is shared by sharing the link; the
form on the page only rewrites the address. Everything is compared with the first version
chosen (the baseline): params, metrics (with a bar per metric scaled across the versions,
and the difference from the baseline), files by path (same, changed, added or removed, by
digest, with the size difference), and lineage. A row whose values differ is marked with a
"changed" badge as well as its background, so the difference does not rely on colour. A
selection the page cannot show (too few or too many versions, a version that does not exist)
is explained above the form instead.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from aiohttp import web
from google.rpc import code_pb2
from multidict import MultiMapping

from modelregistry.metadata.v1 import metadata_service_pb2, model_version_pb2
from modelregistry_server.web.gateway import CallError
from modelregistry_server.web.ui.page import Page, human_size, metric_text, param_text
from modelregistry_server.web.ui.version_page import VERDICTS

MIN_VERSIONS, MAX_VERSIONS = 2, 4
MINUS = "\N{MINUS SIGN}"  # reads as a minus next to numbers, where "-" reads as a dash
_NUMBER = re.compile(r"v?([1-9][0-9]{0,17})")
_Version = model_version_pb2.ModelVersion


@dataclass(frozen=True)
class Selection:
    """What the address asks for, and why it cannot be shown (``problem``), if it cannot."""

    model: str
    numbers: list[int]
    raw: list[str]
    problem: str = ""


@dataclass(frozen=True)
class Row:
    """A param or lineage row: one text per version, and whether they differ."""

    key: str
    cells: list[str]
    changed: bool


@dataclass(frozen=True)
class MetricCell:
    """A metric of one version: its text, its bar, its difference from the baseline."""

    text: str
    value: float | None
    delta: str


@dataclass(frozen=True)
class MetricRow:
    """A metric across the versions; ``low``/``high`` scale its bars."""

    key: str
    cells: list[MetricCell]
    low: float
    high: float
    changed: bool


@dataclass(frozen=True)
class FileCell:
    """A path in one version: ``status`` relative to the baseline, size and its difference."""

    status: str  # base, same, changed, added, removed, absent
    size: str
    delta: str
    digest: str


@dataclass(frozen=True)
class FileRow:
    """A path across the versions."""

    path: str
    cells: list[FileCell]
    changed: bool


def parse_selection(query: MultiMapping[str]) -> Selection:
    """The model and version numbers in ``query`` (``model``, repeated ``v``), checked."""
    model = query.get("model", "").strip().removeprefix("models/")
    raw = [value.strip() for value in query.getall("v", []) if value.strip()]
    numbers: list[int] = []
    for value in raw:
        match = _NUMBER.fullmatch(value)
        if match is None:
            return Selection(model, [], raw, f"“{value[:40]}” is not a version number.")
        if int(match.group(1)) not in numbers:
            numbers.append(int(match.group(1)))
    problem = ""
    if not model:
        problem = "Choose a model and 2 to 4 of its versions." if raw else ""
    elif len(numbers) < MIN_VERSIONS:
        problem = (
            f"Choose at least {MIN_VERSIONS} different versions to compare "
            f"(the address names {len(numbers)})."
        )
    elif len(numbers) > MAX_VERSIONS:
        problem = (
            f"Compare at most {MAX_VERSIONS} versions at a time "
            f"(the address names {len(numbers)}): remove some."
        )
    return Selection(model, numbers, raw, problem)


def _differ(values: Sequence[object]) -> bool:
    return any(value != values[0] for value in values[1:])


def param_rows(versions: Sequence[_Version]) -> list[Row]:
    """Every param any version has, by name."""
    keys = sorted({key for v in versions for key in v.params})
    rows = []
    for key in keys:
        cells = [param_text(v.params[key]) if key in v.params else "—" for v in versions]
        rows.append(Row(key, cells, _differ(cells)))
    return rows


def signed(value: float) -> str:
    """A difference with its sign: ``+0.015``, ``-0.2`` (a minus sign), ``±0``."""
    if value == 0:
        return "±0"
    return ("+" if value > 0 else MINUS) + f"{abs(value):.4g}"


def metric_rows(versions: Sequence[_Version]) -> list[MetricRow]:
    """Every metric any version has, by name, with bars scaled per metric."""
    rows = []
    for key in sorted({key for v in versions for key in v.metrics}):
        values = [v.metrics.get(key) for v in versions]
        low, high = bar_scale([value for value in values if value is not None])
        base = values[0]
        cells = [
            MetricCell(
                metric_text(value) if value is not None else "—",
                value,
                signed(value - base) if index and value is not None and base is not None else "",
            )
            for index, value in enumerate(values)
        ]
        rows.append(MetricRow(key, cells, low, high, _differ(values)))
    return rows


def bar_scale(values: Sequence[float]) -> tuple[float, float]:
    """The range of a metric's bars: up to the highest value, and from a quarter of the
    spread below the lowest (not below 0 for a metric that is never negative), so that close
    values still look different and the lowest one still shows a bar."""
    lowest, highest = min(values), max(values)
    spread = highest - lowest
    if spread == 0:
        return min(0.0, lowest), max(highest, min(0.0, lowest) + 1.0)
    low = lowest - spread / 4
    return (max(0.0, low) if lowest >= 0 else low), highest


def size_delta(size: int, base: int) -> str:
    """A size difference: ``+1.5 KiB``, ``-20 B`` (a minus sign), ``±0``."""
    if size == base:
        return "±0"
    return ("+" if size > base else MINUS) + human_size(abs(size - base))


def _file_cell(
    item: model_version_pb2.ManifestFile | None,
    base: model_version_pb2.ManifestFile | None,
    first: bool,
) -> FileCell:
    if item is None:
        return FileCell("absent" if base is None or first else "removed", "", "", "")
    size, digest = human_size(item.size_bytes), item.sha256
    if first:
        return FileCell("base", size, "", digest)
    if base is None:
        return FileCell("added", size, "", digest)
    status = "same" if item.sha256 == base.sha256 else "changed"
    return FileCell(status, size, size_delta(item.size_bytes, base.size_bytes), digest)


def file_rows(versions: Sequence[_Version]) -> list[FileRow]:
    """Every path any version has, each compared with the baseline's file by digest."""
    by_path = [{item.path: item for item in v.files} for v in versions]
    rows = []
    for path in sorted({path for files in by_path for path in files}):
        base = by_path[0].get(path)
        cells = [_file_cell(files.get(path), base, i == 0) for i, files in enumerate(by_path)]
        changed = any(cell.status not in ("base", "same", "absent") for cell in cells)
        rows.append(FileRow(path, cells, changed))
    return rows


def _datasets(lineage: model_version_pb2.Lineage) -> str:
    return "\n".join(f"{d.uri} @ {d.digest[:12]}" if d.digest else d.uri for d in lineage.datasets)


_LINEAGE: tuple[tuple[str, Callable[[_Version], str]], ...] = (
    ("repository", lambda v: v.lineage.source.repo_url),
    ("commit", lambda v: v.lineage.source.commit),
    (
        "dirty",
        lambda v: (
            ("yes" if v.lineage.source.dirty else "no") if v.lineage.HasField("source") else ""
        ),
    ),
    ("datasets", lambda v: _datasets(v.lineage)),
    ("parents", lambda v: ", ".join(v.lineage.parent_versions)),
    ("training run", lambda v: v.lineage.training_run_url or v.lineage.training_run_id),
    ("framework", lambda v: v.framework),
    ("format", lambda v: v.format),
    ("labels", lambda v: ", ".join(f"{k}={x}" for k, x in sorted(v.labels.items()))),
)


def lineage_rows(versions: Sequence[_Version]) -> list[Row]:
    """Where each version came from; rows no version has are left out."""
    rows = []
    for key, read in _LINEAGE:
        cells = [read(v) for v in versions]
        if any(cells):
            rows.append(Row(key, [cell or "—" for cell in cells], _differ(cells)))
    return rows


async def _fetch(page: Page, selection: Selection) -> tuple[list[_Version], str]:
    """The selected versions in the selected order, or a message naming what is missing."""

    async def get(number: int) -> _Version | None:
        name = f"models/{selection.model}/versions/{number}"
        try:
            request = metadata_service_pb2.GetModelVersionRequest(name=name)
            return await page.call(page.metadata.GetModelVersion, request)
        except CallError as exc:
            if exc.status.code != code_pb2.NOT_FOUND:
                raise
            return None

    try:
        found = await asyncio.gather(*(get(n) for n in selection.numbers))
    except CallError as exc:
        if exc.status.code != code_pb2.INVALID_ARGUMENT:
            raise
        return [], exc.status.message
    missing = [str(n) for n, v in zip(selection.numbers, found, strict=True) if v is None]
    if len(missing) == len(found) and not await _model_exists(page, selection.model):
        return [], f"There is no model “{selection.model}” (or your role does not let you see it)."
    if missing:
        return [], f"{selection.model} has no {_listed(missing)}: check the numbers."
    return [v for v in found if v is not None], ""


async def _model_exists(page: Page, model: str) -> bool:
    try:
        request = metadata_service_pb2.GetModelRequest(name=f"models/{model}")
        await page.call(page.metadata.GetModel, request)
    except CallError as exc:
        if exc.status.code != code_pb2.NOT_FOUND:
            raise
        return False
    return True


def _listed(items: Iterable[str]) -> str:
    items = list(items)
    if len(items) == 1:
        return "version " + items[0]
    return "versions " + ", ".join(items[:-1]) + " and " + items[-1]


async def compare(request: web.Request) -> web.StreamResponse:
    """Render the comparison, or the selection form with what is wrong with the address."""
    page = Page(request)
    await page.me()
    selection = parse_selection(request.query)
    versions: list[_Version] = []
    problem = selection.problem
    if not problem and selection.model:
        versions, problem = await _fetch(page, selection)
    inputs = [str(n) for n in selection.numbers] or selection.raw
    return page.render(
        "compare.html",
        status=400 if problem else 200,
        model_id=selection.model,
        inputs=(inputs + [""] * MAX_VERSIONS)[: max(MAX_VERSIONS, len(inputs))],
        problem=problem,
        versions=versions,
        scans=[VERDICTS.get(v.scan_verdict, "") for v in versions],
        params=param_rows(versions),
        metrics=metric_rows(versions),
        files=file_rows(versions),
        lineage=lineage_rows(versions),
        max_versions=MAX_VERSIONS,
    )


ROUTES = [("GET", "/compare", compare)]
