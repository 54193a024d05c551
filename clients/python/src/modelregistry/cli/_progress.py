"""Progress bars for ``push`` and ``pull``: the SDK's :class:`~modelregistry.progress.Progress`.

On a terminal the bar is redrawn in place (at most 10 times a second); when stderr is a file or
a pipe (CI logs) a plain line is written at most once a second. Either way one summary line ends
the transfer, e.g. ``pushed 3 files, 210.0 MiB in 4.2 s (50.0 MB/s)``. The transfer engines call
from several worker threads, so every method takes a lock. Output goes to stderr so that stdout
stays parseable (``--json``).
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from modelregistry.cli._format import human_duration, human_rate, human_size, plural, printable

_TTY_INTERVAL_S = 0.1
_PLAIN_INTERVAL_S = 1.0
_MIN_RATE_WINDOW_S = 0.05
_STATS_WIDTH = len("100%  1023.9 MiB/1023.9 MiB  999.9 MB/s  99/99 files  ETA 59m59s")


def render_bar(
    done: int,
    total: int,
    elapsed: float,
    *,
    files_done: int = 0,
    total_files: int = 0,
    description: str = "",
    width: int = 80,
) -> str:
    """One redrawable line: ``desc [#####.....]  45%  94.5/210.0 MiB  50.0 MB/s  ETA 2.3 s``.

    The bar shrinks to fit ``width`` and disappears when there is no room for it.
    """
    stats = _stats(done, total, elapsed, files_done=files_done, total_files=total_files)
    prefix = f"{description} " if description else ""
    # Room for the bar is computed against the widest stats text, not the current one, so
    # the bar keeps its length while the numbers change.
    room = width - len(prefix) - _STATS_WIDTH - 3
    if room >= 10:
        bar_width = min(room, 40)
        fraction = min(done / total, 1.0) if total > 0 else 1.0
        filled = int(bar_width * fraction)
        bar = "[" + "#" * filled + "." * (bar_width - filled) + "] "
    else:
        bar = ""
    line = f"{prefix}{bar}{stats}"
    return line[: max(width - 1, 0)]


def render_plain(
    done: int,
    total: int,
    elapsed: float,
    *,
    files_done: int = 0,
    total_files: int = 0,
    description: str = "",
) -> str:
    """A log-friendly progress line without a bar."""
    stats = _stats(done, total, elapsed, files_done=files_done, total_files=total_files)
    return f"{description}: {stats}" if description else stats


def render_summary(
    verb: str, files_done: int, total_files: int, nbytes: int, elapsed: float
) -> str:
    """``pushed 3 files, 210.0 MiB in 4.2 s (50.0 MB/s)``; ``2 of 3 files`` if incomplete."""
    if total_files and files_done < total_files:
        files = f"{files_done} of {total_files} files"
    else:
        files = plural(max(files_done, total_files), "file")
    rate = _rate(nbytes, elapsed)
    rate_text = f" ({human_rate(rate)})" if rate else ""
    return f"{verb} {files}, {human_size(nbytes)} in {human_duration(elapsed)}{rate_text}"


def _rate(nbytes: int, elapsed: float) -> float:
    """Bytes per second, or 0 when too little time has passed for the figure to mean much."""
    return nbytes / elapsed if elapsed >= _MIN_RATE_WINDOW_S else 0.0


def _stats(done: int, total: int, elapsed: float, *, files_done: int, total_files: int) -> str:
    percent = f"{min(done * 100 // total, 100):3d}%" if total > 0 else "100%"
    sizes = f"{human_size(done)}/{human_size(total)}"
    rate = _rate(done, elapsed)
    parts = [percent, sizes, human_rate(rate)]
    if total_files:
        parts.append(f"{files_done}/{total_files} files")
    if rate > 0 and done < total:
        parts.append(f"ETA {human_duration((total - done) / rate)}")
    return "  ".join(parts)


class CliProgress:
    """Draws push/pull progress on ``stream`` (stderr); thread-safe.

    A transfer engine may run several phases (a push hashes, then uploads), each a
    ``start() ... finish()`` pair with its own bar. The CLI calls :meth:`summary` once the
    command succeeded; it describes the last phase, the one that moved the bytes.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        width: Callable[[], int] | None = None,
    ) -> None:
        self._stream = stream
        self._tty = stream.isatty() if tty is None else tty
        self._clock = clock
        self._width = width or (lambda: shutil.get_terminal_size((80, 24)).columns)
        self._lock = threading.Lock()
        self._last_draw = float("-inf")
        self._phase: _Phase | None = None
        self._last: _Phase | None = None
        self._bar_visible = False

    # -- the Progress protocol ------------------------------------------------------------

    def start(self, total_bytes: int, total_files: int, description: str) -> None:
        """Begin a phase that moves ``total_bytes`` in ``total_files`` files."""
        with self._lock:
            self._phase = _Phase(
                printable(description), max(total_bytes, 0), max(total_files, 0), self._clock()
            )
            self._last = self._phase
            if self._tty:
                self._last_draw = float("-inf")  # draw the new phase at once
            self._draw()

    def advance(self, nbytes: int) -> None:
        """Count ``nbytes`` more bytes moved."""
        with self._lock:
            if self._phase is not None:
                self._phase.done_bytes += nbytes
                self._draw()

    def file_done(self, path: str) -> None:
        """Count one finished file."""
        with self._lock:
            if self._phase is not None:
                self._phase.done_files += 1
                self._draw()

    def finish(self) -> None:
        """End the phase: clear the bar (the summary line comes from :meth:`summary`)."""
        with self._lock:
            if self._phase is None:
                return
            self._phase.elapsed = self._clock() - self._phase.started_at
            self._phase = None
            self._clear()

    # -- for the CLI ----------------------------------------------------------------------

    def summary(self, verb: str, nothing: str) -> None:
        """Write the final line, e.g. ``pushed 3 files, 210.0 MiB in 4.2 s (50.0 MB/s)``.

        ``nothing`` is written instead when no phase moved any file (all deduplicated or
        cached).
        """
        with self._lock:
            last = self._last
            self._clear()
            if last is None or (last.total_files == 0 and last.done_bytes == 0):
                line = nothing
            else:
                elapsed = (
                    last.elapsed if last.elapsed is not None else (self._clock() - last.started_at)
                )
                line = render_summary(
                    verb, last.done_files, last.total_files, last.done_bytes, elapsed
                )
            self._stream.write(line + "\n")
            self._stream.flush()

    # -- drawing (lock held) --------------------------------------------------------------

    def _clear(self) -> None:
        if self._tty and self._bar_visible:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
        self._bar_visible = False

    def _draw(self) -> None:
        phase = self._phase
        if phase is None:
            return
        now = self._clock()
        interval = _TTY_INTERVAL_S if self._tty else _PLAIN_INTERVAL_S
        if now - self._last_draw < interval:
            return
        self._last_draw = now
        elapsed = now - phase.started_at
        if self._tty:
            line = render_bar(
                phase.done_bytes,
                phase.total_bytes,
                elapsed,
                files_done=phase.done_files,
                total_files=phase.total_files,
                description=phase.description,
                width=self._width(),
            )
            self._stream.write("\r\x1b[K" + line)
            self._bar_visible = True
        else:
            line = render_plain(
                phase.done_bytes,
                phase.total_bytes,
                elapsed,
                files_done=phase.done_files,
                total_files=phase.total_files,
                description=phase.description,
            )
            self._stream.write(line + "\n")
        self._stream.flush()


@dataclass
class _Phase:
    description: str
    total_bytes: int
    total_files: int
    started_at: float
    done_bytes: int = 0
    done_files: int = 0
    elapsed: float | None = None
