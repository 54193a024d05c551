"""The figures of one fault: what failed, how long service stopped, what the ledger says."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field

from tests.scale.load import Op

KINDS = ("push", "pull", "resolve")
# Failures a client may see while a replica, a node or the primary goes away: the SDK retried
# them (a bounded number of times) and gave up. Anything else (INTERNAL above all) is a bug.
RETRYABLE = ("UNAVAILABLE", "ABORTED", "RESOURCE_EXHAUSTED")


@dataclass
class FaultResult:
    """One row of the table."""

    fault: str
    ops: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    longest_interruption_s: float = 0.0
    interrupted_kind: str = ""
    resumed_s: float = 0.0
    # Per kind of operation: seconds until it succeeded again, and the bound it must meet.
    resumed_by_kind: dict[str, float] = field(default_factory=dict)
    bounds: dict[str, float] = field(default_factory=dict)
    acked: int = 0
    lost: int = 0
    missed_events: int = 0
    watch_reconnects: int = 0
    upload_resumes: int = 0

    @property
    def failed_total(self) -> int:
        """Operations that failed after the SDK's retries."""
        return sum(self.failed.values())

    def unexpected_failures(self) -> list[str]:
        """Failure kinds that are not a retryable outage (must be none)."""
        # Keys are "kind: CODE/REASON" (see summarize).
        return [f for f in self.failed if f.split(": ", 1)[-1].split("/")[0] not in RETRYABLE]

    def over_bound(self) -> list[str]:
        """The kinds that resumed later than their bound, as ``kind 12.3s > 10s`` (must be none)."""
        return [
            f"{kind} {self.resumed_by_kind[kind]:.1f}s > {bound:.0f}s"
            for kind, bound in self.bounds.items()
            if self.resumed_by_kind.get(kind, float("inf")) > bound
        ]


def longest_gap(ops: list[Op], start: float, end: float) -> tuple[float, str]:
    """The longest time within ``[start, end]`` in which some kind of operation completed no
    success, and that kind: the longest interruption a caller of that kind saw."""
    worst, worst_kind = 0.0, ""
    for kind in KINDS:
        done = sorted(o.ended for o in ops if o.kind == kind and not o.error and o.ended > start)
        edges = [start, *[t for t in done if t < end], end]
        gap = max(b - a for a, b in itertools.pairwise(edges))
        if gap > worst:
            worst, worst_kind = gap, kind
    return worst, worst_kind


def time_to_resume(ops: list[Op], since: float) -> dict[str, float]:
    """Per kind, how long after ``since`` it had a success that *started* after ``since``: the
    time until that service resumed (for a failover, ``since`` is the promotion); inf if never."""
    resumed = {}
    for kind in KINDS:
        firsts = [o.ended for o in ops if o.kind == kind and not o.error and o.started >= since]
        resumed[kind] = (min(firsts) if firsts else float("inf")) - since
    return resumed


def summarize(
    fault: str,
    ops: list[Op],
    fault_at: float,
    resume_from: float,
    end: float,
    bounds: dict[str, float],
) -> FaultResult:
    """The figures of the operations that ended between the fault and ``end``; ``bounds`` is
    the resume bound of each kind for this fault."""
    window = [o for o in ops if fault_at <= o.ended <= end]
    result = FaultResult(fault, ops=len(window), bounds=dict(bounds))
    # By kind too: "1 failed" says less to whoever reads the table than "resolve: UNAVAILABLE".
    result.failed = Counter(f"{o.kind}: {o.error}" for o in window if o.error)
    result.longest_interruption_s, result.interrupted_kind = longest_gap(ops, fault_at, end)
    result.resumed_by_kind = time_to_resume(ops, resume_from)
    result.resumed_s = max(result.resumed_by_kind.values())
    return result


def table(results: list[FaultResult]) -> str:
    """The results as a Markdown table (what ``make scale-test`` prints)."""
    head = (
        "| Fault | Operations | Failed after SDK retries | Longest interruption | "
        "Resumed after (slowest kind, its bound) | Acked pushes | Acked lost | Missed events | "
        "Watch reconnects | Uploads resumed |"
    )
    rows = [head, "|" + "---|" * 10]
    for r in results:
        slowest = max(r.resumed_by_kind, key=lambda k: r.resumed_by_kind[k], default="")
        bound = f", bound {r.bounds[slowest]:.0f} s" if slowest in r.bounds else ""
        failed = f"{r.failed_total}" + (
            f" ({', '.join(f'{k} x{v}' for k, v in r.failed.most_common())})" if r.failed else ""
        )
        rows.append(
            f"| {r.fault} | {r.ops} | {failed} | {r.longest_interruption_s:.2f} s "
            f"({r.interrupted_kind}) | {r.resumed_s:.2f} s ({slowest}{bound}) | {r.acked} | "
            f"{r.lost} | {r.missed_events} | {r.watch_reconnects} | {r.upload_resumes} |"
        )
    return "\n".join(rows)
