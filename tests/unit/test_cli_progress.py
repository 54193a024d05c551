"""The push/pull progress display: bar rendering, throttling, summaries, thread safety."""

from __future__ import annotations

import io
import threading

from modelregistry.cli._progress import CliProgress, render_bar, render_plain, render_summary
from modelregistry.progress import Progress

MIB = 1024 * 1024


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bar_shows_bytes_percent_rate_and_eta() -> None:
    line = render_bar(50 * MIB, 200 * MIB, 1.0, files_done=1, total_files=3, width=120,
                      description="pushing m")  # fmt: skip
    assert line.startswith("pushing m [##########..............................] ")
    assert " 25%" in line
    assert "50.0 MiB/200.0 MiB" in line
    assert "52.4 MB/s" in line
    assert "1/3 files" in line
    assert "ETA 3.0 s" in line


def test_bar_fits_narrow_terminals() -> None:
    line = render_bar(1, 2, 1.0, width=40, description="pulling")
    assert len(line) <= 39
    assert "[" not in line  # no room for a bar: the numbers stay


def test_edge_cases_do_not_divide_by_zero() -> None:
    assert "100%" in render_plain(0, 0, 0.0)
    assert "ETA" not in render_plain(10, 100, 0.0)
    assert render_summary("pushed", 0, 0, 0, 0.0) == "pushed 0 files, 0 B in 0.0 s"


def test_summary_line() -> None:
    assert (
        render_summary("pushed", 3, 3, 210 * MIB, 4.4)
        == "pushed 3 files, 210.0 MiB in 4.4 s (50.0 MB/s)"
    )
    assert render_summary("pulled", 1, 1, 5, 0.01) == "pulled 1 file, 5 B in 0.0 s"
    assert render_summary("pulled", 2, 3, 5, 1.0).startswith("pulled 2 of 3 files")


def test_plain_mode_writes_at_most_one_line_a_second() -> None:
    out, clock = io.StringIO(), Clock()
    progress = CliProgress(out, tty=False, clock=clock)
    progress.start(100 * MIB, 2, "pushing m")
    for _ in range(10):
        clock.now += 0.25
        progress.advance(5 * MIB)
    progress.file_done("a")
    progress.finish()
    progress.summary("pushed", "nothing")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("pushing m:   0%")
    assert len(lines) == 1 + 2 + 1  # start, at t=1.0 and t=2.0, and the summary
    assert "\r" not in out.getvalue()
    assert lines[-1] == "pushed 1 of 2 files, 50.0 MiB in 2.5 s (21.0 MB/s)"


def test_tty_mode_redraws_in_place_and_clears_before_the_summary() -> None:
    out, clock = io.StringIO(), Clock()
    progress = CliProgress(out, tty=True, clock=clock, width=lambda: 100)
    progress.start(10, 1, "pulling m@prod")
    clock.now += 0.5
    progress.advance(10)
    progress.file_done("a")
    progress.finish()
    progress.summary("pulled", "nothing")
    text = out.getvalue()
    assert text.count("\r\x1b[K") >= 3  # two draws and the clear
    assert "\n" not in text.rstrip("\n")  # the bar never scrolls
    assert text.endswith("\r\x1b[Kpulled 1 file, 10 B in 0.5 s (0.0 MB/s)\n")


def test_phases_and_the_nothing_message() -> None:
    out, clock = io.StringIO(), Clock()
    progress = CliProgress(out, tty=False, clock=clock)
    progress.start(100, 1, "hashing")
    progress.advance(100)
    progress.finish()
    progress.start(0, 0, "pushing m")  # everything was deduplicated
    progress.finish()
    progress.summary("pushed", "uploaded nothing")
    assert out.getvalue().splitlines()[-1] == "uploaded nothing"
    never = io.StringIO()
    CliProgress(never, tty=False).summary("pulled", "downloaded nothing: cached")
    assert never.getvalue() == "downloaded nothing: cached\n"


def test_threads_count_every_byte() -> None:
    out = io.StringIO()
    progress: Progress = CliProgress(out, tty=False)
    progress.start(8 * 1000 * 64, 8, "pulling")

    def work() -> None:
        for _ in range(1000):
            progress.advance(64)
        progress.file_done("f")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    progress.finish()
    assert isinstance(progress, CliProgress)
    progress.summary("pulled", "nothing")
    assert out.getvalue().splitlines()[-1].startswith("pulled 8 files, 500.0 KiB in ")
