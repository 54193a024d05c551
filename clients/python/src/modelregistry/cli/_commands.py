"""What each command does: SDK calls in, text or JSON out. Only the :class:`Client` (and, for
``cache``, the :class:`Cache`) is used."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO, TypeVar

from modelregistry._refs import MODEL_PREFIX, parse_ref, parse_version_number
from modelregistry.cache import Cache
from modelregistry.cli import _format as fmt
from modelregistry.cli import _values as values
from modelregistry.cli._access import ACCESS_COMMANDS
from modelregistry.cli._audit import AUDIT_COMMANDS
from modelregistry.cli._governance import GOVERNANCE_COMMANDS
from modelregistry.cli._parser import UsageError
from modelregistry.cli._progress import CliProgress
from modelregistry.client import Client
from modelregistry.diff import VersionDiff
from modelregistry.errors import InvalidArgumentError, NotFoundError

T = TypeVar("T")


def _emit_json(out: TextIO, value: Any) -> None:
    out.write(fmt.json_text(value) + "\n")


def _emit(out: TextIO, text: str) -> None:
    """Write a human result. The builders (``fmt.table``, ``fmt.key_values``) escaped each
    value already; this catches any control character left in the lines themselves."""
    if text:
        out.write(fmt.printable(text, keep="\n\t") + "\n")


def _note(text: str) -> None:
    """A remark on stderr, escaped like every other output."""
    print(fmt.printable(text), file=sys.stderr)


def _emit_one(out: TextIO, args: argparse.Namespace, as_json: Any, as_text: str) -> None:
    """One result: ``as_json`` with ``--json``, else the human ``as_text``."""
    if args.json:
        _emit_json(out, as_json)
    else:
        _emit(out, as_text)


def _emit_list(
    out: TextIO,
    args: argparse.Namespace,
    items: Sequence[T],
    to_dict: Callable[[T], Any],
    render: Callable[[Sequence[T]], str],
    empty: str,
) -> None:
    """A list as JSON, a table, or (on stderr, unless ``--quiet``) a note that it is empty."""
    if args.json:
        _emit_json(out, [to_dict(item) for item in items])
    elif items:
        _emit(out, render(items))
    elif not args.quiet:
        _note(empty)


@contextlib.contextmanager
def _usage_errors() -> Iterator[None]:
    """A value the user gave that does not parse (a ValueError) is a usage error: exit 2."""
    try:
        yield
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _progress(args: argparse.Namespace) -> CliProgress | None:
    return None if args.quiet else CliProgress(sys.stderr)


def _limit(limit: int | None) -> int:
    """A page size for a ``--limit`` (0 = the server's default)."""
    return min(limit, 1000) if limit else 0


# ----------------------------------------------------------------------------------- commands


def cmd_push(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    with _usage_errors():
        params = values.parse_params(args.param)
        metrics = values.parse_metrics(args.metric)
        labels = values.parse_pairs(args.label, "--label")
    description = args.description
    if args.description_file:
        description = Path(args.description_file).read_text(encoding="utf-8")
    progress = _progress(args)
    version = client.push(
        args.paths,
        model=args.model,
        params=params,
        metrics=metrics,
        labels=labels,
        description=description,
        alias=args.alias,
        lineage=not args.no_lineage,
        parallelism=args.parallel,
        progress=progress,
        direct_upload=not args.no_direct_upload,
    )
    if progress is not None:
        progress.summary("pushed", "uploaded nothing: the registry already had every file")
    _emit_one(out, args, fmt.version_dict(version), fmt.printable(fmt.version_ref(version)))
    return 0


def cmd_pull(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    progress = _progress(args)
    path = os.path.abspath(
        client.pull(
            args.ref,
            args.dest,
            allow_patterns=args.include or None,
            ignore_patterns=args.exclude or None,
            parallelism=args.parallel,
            progress=progress,
        )
    )
    if progress is not None:
        progress.summary("pulled", "downloaded nothing: every file was in the local cache")
    _emit_one(out, args, {"ref": args.ref, "path": path}, path)
    return 0


def cmd_ls(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    pager = client.list_models(
        filter=args.filter, order_by=args.order_by, page_size=_limit(args.limit)
    )
    models = list(itertools.islice(pager, args.limit))
    _emit_list(out, args, models, fmt.model_dict, fmt.render_models, "no models")
    return 0


def cmd_show(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    version = client.resolve(args.ref)
    if args.card:
        card = version.description or f"{fmt.version_ref(version)} has no model card"
        _emit_one(out, args, {"name": version.name, "card": version.description}, card)
        return 0
    _emit_one(out, args, fmt.version_dict(version), fmt.render_version(version))
    return 0


def cmd_versions(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    pager = client.list_versions(
        args.model, filter=args.filter, order_by=args.order_by, page_size=_limit(args.limit)
    )
    versions = list(itertools.islice(pager, args.limit))
    if not versions:
        # The server lists nothing for a model that does not exist; say which it is.
        client.get_model(args.model)
    _emit_list(
        out, args, versions, fmt.version_dict, fmt.render_versions, f"no versions of {args.model}"
    )
    return 0


def cmd_alias(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    if args.alias_command == "set":
        alias = client.set_alias(args.model, args.alias, args.version)
        _emit_one(out, args, fmt.alias_dict(alias), f"{args.alias} -> {args.model}:{args.version}")
    elif args.alias_command == "rm":
        client.delete_alias(args.model, args.alias)
        if args.json:
            _emit_json(out, {"alias": args.alias, "deleted": True})
        elif not args.quiet:
            _emit(out, f"removed alias {args.alias} of {args.model}")
    else:
        aliases = client.list_aliases(args.model)
        _emit_list(
            out, args, aliases, fmt.alias_dict, fmt.render_aliases, f"{args.model} has no aliases"
        )
    return 0


def cmd_diff(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    diff = client.diff(args.ref_a, args.ref_b)
    _emit_one(out, args, diff.to_dict(), render_diff(diff))
    return 0


def cmd_log(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    with _usage_errors():
        start = values.parse_time(args.since) if args.since else None
        end = values.parse_time(args.until) if args.until else None
    pager = client.list_audit_events(
        model=args.model,
        actor=args.actor,
        start=start,
        end=end,
        order_by="event_time asc" if args.reverse else "",
        page_size=_limit(args.limit),
    )
    events = list(itertools.islice(pager, args.limit))
    _emit_list(out, args, events, fmt.audit_dict, fmt.render_audit, "no audit events")
    return 0


def cmd_gc(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    with _usage_errors():
        grace = values.parse_duration(args.grace_period) if args.grace_period else None
    result = client.run_gc(dry_run=args.dry_run, grace_period=grace)
    verb = "would delete" if result.dry_run else "deleted"
    expire = "would expire" if result.dry_run else "expired"
    _emit_one(
        out,
        args,
        {
            "dry_run": result.dry_run,
            "deleted_blob_count": result.deleted_blob_count,
            "deleted_size_bytes": result.deleted_size_bytes,
            "expired_version_count": result.expired_version_count,
            "deleted_blobs": list(result.deleted_blobs),
        },
        f"{verb} {result.deleted_blob_count} blobs ({fmt.human_size(result.deleted_size_bytes)});"
        f" {expire} {result.expired_version_count} abandoned pending versions",
    )
    return 0


def cmd_cache(cache: Cache, args: argparse.Namespace, out: TextIO) -> int:
    """``cache ls|rm|prune``: the local cache only, never the server."""
    if args.cache_command == "ls":
        return _cache_ls(cache, args, out)
    if args.cache_command == "rm":
        return _cache_rm(cache, args, out)
    return _cache_prune(cache, args, out)


def _cache_ls(cache: Cache, args: argparse.Namespace, out: TextIO) -> int:
    snapshots = cache.snapshots()
    usage = cache.usage()
    if args.json:
        _emit_json(
            out,
            {
                "root": str(cache.root.absolute()),
                "snapshots": [fmt.snapshot_dict(s) for s in snapshots],
                "total": fmt.usage_dict(usage),
            },
        )
        return 0
    if snapshots:
        _emit(out, fmt.render_snapshots(snapshots))
    elif not args.quiet:
        _note(f"no snapshots in {cache.root}")
    if snapshots or usage.blobs or usage.incomplete:
        _emit(out, fmt.usage_line(usage))
    return 0


def _cache_rm(cache: Cache, args: argparse.Namespace, out: TextIO) -> int:
    model, version = _cache_target(cache, args.target)
    with _usage_errors():
        removed = cache.remove_snapshot(model, version)
    if not removed:
        what = model if version is None else f"{model}:{version}"
        raise NotFoundError(f"{what} is not in the local cache ({cache.root})")
    if args.json:
        _emit_json(out, [fmt.snapshot_dict(s) for s in removed])
    else:
        for info in removed:
            _emit(out, f"removed {info.ref} ({info.files} files, {fmt.human_size(info.bytes)})")
    if not args.quiet:
        print(
            "the files stay in the cache until `modelregistry cache prune` deletes those no "
            "other version uses",
            file=sys.stderr,
        )
    return 0


def _cache_target(cache: Cache, text: str) -> tuple[str, int | None]:
    """``(model, version)`` for ``cache rm``: a version number, or None for every version.

    ``NAME:N`` and ``NAME/versions/N`` name a version directly. An alias or a uid means only
    what the server answered the last time it was pulled, so the ref record offline mode uses
    decides it; the registry is never asked (it may be unreachable, and the alias may have
    moved since, which would remove a version other than the one cached for that ref).
    """
    try:
        parsed = parse_ref(text)
    except InvalidArgumentError:
        # Not a reference the registry accepts, so nothing cached: say why in one line.
        name = text.strip().removeprefix(MODEL_PREFIX).replace("/versions/", ":")
        number = name.partition(":")[2]
        if ":" in name and "@" not in name and parse_version_number(number) is None:
            raise UsageError(
                f"not a version number in {text!r} (use NAME:N, e.g. fraud:3)"
            ) from None
        return name, None  # remove_snapshot rejects what is not a folder name
    if parsed.kind == "latest":
        return parsed.model, None  # a plain NAME: every cached version of the model
    if parsed.kind == "version":
        return parsed.model, int(parsed.value)
    if parsed.kind == "uid" and (cache.root / "snapshots" / parsed.value).is_dir():
        return parsed.value, None  # a model named like a uid
    recorded = cache.load_ref(text)
    if recorded is None or not recorded.name.startswith(MODEL_PREFIX):
        raise NotFoundError(f"{text} was never pulled into the local cache ({cache.root})")
    return fmt.model_of(recorded.name), recorded.version


def _cache_prune(cache: Cache, args: argparse.Namespace, out: TextIO) -> int:
    with _usage_errors():
        older_than = values.parse_duration(args.incomplete_older_than)
    result = cache.prune(incomplete_older_than=older_than, dry_run=args.dry_run)
    _emit_one(out, args, fmt.prune_dict(result), fmt.prune_line(result))
    if result.busy and not args.quiet:
        print(
            "a pull is running: unused files and ref records were kept; prune again when it "
            "has finished",
            file=sys.stderr,
        )
    return 0


COMMANDS: dict[str, Callable[[Client, argparse.Namespace, TextIO], int]] = {
    "push": cmd_push,
    "pull": cmd_pull,
    "ls": cmd_ls,
    "show": cmd_show,
    "versions": cmd_versions,
    "alias": cmd_alias,
    "diff": cmd_diff,
    "log": cmd_log,
    "gc": cmd_gc,
    **ACCESS_COMMANDS,
    **GOVERNANCE_COMMANDS,
    **AUDIT_COMMANDS,
}


# ------------------------------------------------------------------------------- rendering


def render_diff(diff: VersionDiff) -> str:
    """The human ``diff``: what changed between two versions, section by section."""
    a, b = fmt.printable(fmt.version_ref(diff.a)), fmt.printable(fmt.version_ref(diff.b))
    lines = [f"--- {a}", f"+++ {b}"]
    rows: list[tuple[str, ...]]
    if diff.params:
        rows = [
            (f"  {key}", fmt.format_scalar(old), "->", fmt.format_scalar(new))
            for key, (old, new) in sorted(diff.params.items())
        ]
        lines += ["params:", fmt.table(("", a, "", b), rows).split("\n", 1)[1]]
    if diff.metrics:
        rows = [
            (
                f"  {key}",
                fmt.format_scalar(old),
                "->",
                fmt.format_scalar(new),
                f"({new - old:+.4g})" if old is not None and new is not None else "",
            )
            for key, (old, new) in sorted(diff.metrics.items())
        ]
        lines += ["metrics:", fmt.table(("", a, "", b, ""), rows).split("\n", 1)[1]]
    if diff.files_added or diff.files_removed or diff.files_changed or diff.files_unchanged:
        lines.append("files:")
        lines += [f"  + {fmt.printable(path)}" for path in diff.files_added]
        lines += [f"  - {fmt.printable(path)}" for path in diff.files_removed]
        lines += [f"  ~ {fmt.printable(path)}" for path in diff.files_changed]
    if diff.files_unchanged:
        lines.append(f"  {fmt.plural(diff.files_unchanged, 'file')} unchanged")
    if not diff.has_changes:
        lines.append("no differences in params, metrics or files")
    return "\n".join(lines)
