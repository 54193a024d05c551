"""An in-process cache of ``ResolveModelVersion`` answers, kept fresh by the change-event feed.

Serving systems resolve the same few references (``fraud@production``) over and over, and a
resolve that reaches PostgreSQL costs the server several times an empty gRPC call (see
bench/README.md). This cache answers repeats from memory. It stays correct because of what can
change the answer for a reference, and how each change reaches it:

- Every such change is a write to one model: an alias move or removal, a new READY version
  ("latest"), a version deleted, a version's labels or description updated, a model deleted.
  Each commits a PostgreSQL NOTIFY naming the model, which every replica's event feed receives
  and turns into ``model_changed``; the replica that made the change also invalidates
  synchronously once its write returns (``invalidate_model``), so its own callers never wait
  for the round trip of the notification.
- A resolve that was reading the database while an invalidation happened may hold the old
  answer; ``put`` refuses it (the epoch it read before querying is no longer current).
- When the notification connection is lost, changes can go unreported, so the cache empties
  and stays off until the feed is listening again (``feed_lost`` / ``feed_connected``).
- Entries expire ``ttl_s`` after they were stored whatever happens, which bounds how stale an
  answer can be if a notification is delayed or the loss of the connection goes unnoticed
  (a half-open TCP connection). Normally a change made through another replica is visible
  here as soon as its NOTIFY arrives (milliseconds).

Only successful answers for "now" are cached; ``as_of`` resolves and errors always go to the
database. Entries are domain objects shared between callers: they are frozen, and nothing may
mutate them.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from modelregistry_server.metadata.domain.version import ModelVersion, VersionState

# A serving fleet resolves a handful of references; this bounds memory (a resolved version
# with a 20-file manifest is a few KiB) if callers spray many different ones.
DEFAULT_MAX_ENTRIES = 4096
# Short enough to bound staleness when a notification is lost without the connection
# dropping; long enough that a hot reference reaches the database once every few seconds.
DEFAULT_TTL_S = 5.0
# Only these states resolve; anything else is never an answer worth keeping.
_CACHEABLE = frozenset({VersionState.READY, VersionState.ARCHIVED})


class ResolveCache:
    """A bounded LRU of reference → resolved version, per process (implements ``ChangeListener``).

    Starts disabled: nothing is cached until the event feed reports that it is listening.
    """

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or ttl_s <= 0:
            raise ValueError("max_entries must be ≥ 1 and ttl_s > 0")
        self._max_entries = max_entries
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, tuple[ModelVersion, float]] = OrderedDict()
        self._refs_by_model: dict[str, set[str]] = {}
        self._epoch = 0
        self._enabled = False
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        """Whether answers are cached (the event feed is listening)."""
        return self._enabled

    def __len__(self) -> int:
        return len(self._entries)

    # ------------------------------------------------------------------ lookups

    def get(self, ref: str) -> ModelVersion | None:
        """The cached answer for ``ref`` (exactly as the caller wrote it), if fresh."""
        entry = self._entries.get(ref)
        if entry is None:
            self.misses += 1
            return None
        version, expires = entry
        if self._clock() >= expires:
            self._drop(ref)
            self.misses += 1
            return None
        self._entries.move_to_end(ref)
        self.hits += 1
        return version

    def epoch(self) -> int:
        """Read before querying the database; hand the value to ``put`` with the answer."""
        return self._epoch

    def put(self, ref: str, version: ModelVersion, epoch: int) -> None:
        """Remember ``ref`` → ``version`` unless something was invalidated since ``epoch``."""
        if not self._enabled or epoch != self._epoch or version.state not in _CACHEABLE:
            return
        self._drop(ref)
        self._entries[ref] = (version, self._clock() + self._ttl_s)
        self._refs_by_model.setdefault(version.model_id, set()).add(ref)
        while len(self._entries) > self._max_entries:
            self._drop(next(iter(self._entries)))

    # ------------------------------------------------------------------ invalidation

    def invalidate_model(self, model_id: str) -> None:
        """Forget every answer that is a version of ``model_id``."""
        self._epoch += 1
        for ref in self._refs_by_model.pop(model_id, ()):
            self._entries.pop(ref, None)

    def clear(self) -> None:
        """Forget everything."""
        self._epoch += 1
        self._entries.clear()
        self._refs_by_model.clear()

    def feed_connected(self) -> None:
        """See ``ChangeListener``: start caching."""
        # A resolve still reading from before the feed listened may hold an answer that a
        # then-unreported change made stale: bumping the epoch makes ``put`` refuse it.
        self.clear()
        self._enabled = True

    def feed_lost(self) -> None:
        """See ``ChangeListener``: stop caching until the feed listens again."""
        self._enabled = False
        self.clear()

    def model_changed(self, model_id: str | None) -> None:
        """See ``ChangeListener``."""
        if model_id is None:
            self.clear()
        else:
            self.invalidate_model(model_id)

    def _drop(self, ref: str) -> None:
        entry = self._entries.pop(ref, None)
        if entry is None:
            return
        model_id = entry[0].model_id
        refs = self._refs_by_model.get(model_id)
        if refs is not None:
            refs.discard(ref)
            if not refs:
                del self._refs_by_model[model_id]
