"""Indexes the minimizer builds once, so that each step is linear in the core's headers.

Standard library only (the crash hook imports it through :mod:`coripper.minimizer.stream`). A core may
hold ~65,530 mappings (``vm.max_map_count``) and as many program headers: the questions the
engine asks per mapping or per segment (which watched pages does this chunk feed, where does
this module end, why was this range kept) are answered here by bisection and sweeps over
sorted lists, never by a scan of every mapping.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Sequence
from itertools import accumulate

from .elfcore import FileMapping
from .layout import Want

TYPE_CHECKING = False     # typing is not imported at run time (coripper/minimizer/lighttyping.py)
if TYPE_CHECKING:
    from typing import Callable


class Watch:
    """A range of memory whose bytes the engine wants to see as they stream by; once they all
    came, ``callback(start, data)``."""

    __slots__ = ("start", "end", "callback", "data", "fired", "seq")

    def __init__(self, start: int, end: int, callback: Callable[[int, bytes], None]) -> None:
        self.start = start
        self.end = end
        self.callback = callback
        self.data = bytearray()
        self.fired = False
        self.seq = 0        # order of addition: watches fire in this order


class WatchIndex:
    """The watches by start address; :meth:`overlapping` finds those a chunk touches.

    Every watch is short (a page, the executable's phdrs, <= 64 KiB of PT_DYNAMIC), so the ones
    overlapping ``[lo, hi)`` start in ``(lo - span, hi)``, ``span`` being the longest watch.
    """

    def __init__(self) -> None:
        self.all: list[Watch] = []          # in order of addition
        self._items: list[Watch] = []       # sorted by start once _sort() ran
        self._starts: list[int] = []
        self._unsorted = 0
        self._span = 0

    def add(self, watch: Watch) -> None:
        """Watch one more range (sorted in at the next query)."""
        self.add_many((watch,))

    def add_many(self, watches: Iterable[Watch]) -> None:
        """Watch these ranges too (sorted in at the next query)."""
        span = self._span
        seq = len(self.all)
        for w in watches:
            w.seq = seq
            seq += 1
            self.all.append(w)
            self._items.append(w)
            if w.end - w.start > span:
                span = w.end - w.start
        self._unsorted = len(self._items)
        self._span = span

    def _sort(self) -> None:
        # Timsort: one O(n log n) sort for the bulk of watches added before the data, then
        # O(n) merges of the few added while reading (the executable's PT_DYNAMIC).
        self._items.sort(key=lambda w: w.start)
        self._starts = [w.start for w in self._items]
        self._unsorted = 0

    def overlapping(self, lo: int, hi: int) -> list[Watch]:
        """Unfired watches overlapping ``[lo, hi)``, in order of addition."""
        if self._unsorted:
            self._sort()
        i = bisect.bisect_right(self._starts, lo - self._span)
        j = bisect.bisect_left(self._starts, hi)
        hits = [w for w in self._items[i:j] if not w.fired and w.end > lo]
        if len(hits) > 1:
            hits.sort(key=lambda w: w.seq)
        return hits


def module_ends(modules: Sequence[FileMapping], mappings: Sequence[FileMapping]) -> list[int]:
    """Where each module (a file mapped at offset 0) ends, in the order of ``modules``.

    A module extends over the later mappings of the same path (its other segments), but not
    past the next module's start: then it ends at the last of its path's mappings starting
    before that next module. ``modules`` is a subset of ``mappings`` with unique starts.
    """
    by_path: dict[str, list[tuple[int, int]]] = {}
    for x in mappings:
        by_path.setdefault(x.path, []).append((x.start, x.end))
    index: dict[str, tuple[list[int], list[int], list[int]]] = {}
    for path, spans in by_path.items():
        spans.sort()
        starts = [s for s, _ in spans]
        ends = [e for _, e in spans]
        suffix_max = list(accumulate(reversed(ends), max))[::-1]
        index[path] = (starts, ends, suffix_max)
    module_starts = sorted({m.start for m in modules})
    out: list[int] = []
    for m in modules:
        starts, ends, suffix_max = index[m.path]
        i = bisect.bisect_left(starts, m.start)
        end = suffix_max[i] if i < len(starts) else m.end
        k = bisect.bisect_right(module_starts, m.start)
        if k < len(module_starts) and end > module_starts[k]:
            # The mappings of one path between consecutive module starts are disjoint sets,
            # so these slices add up to at most every mapping once.
            j = bisect.bisect_left(starts, module_starts[k], lo=i)
            end = max(ends[i:j], default=m.end)
        out.append(end)
    return out


def reasons_of(loads: Sequence[tuple[int, int]], wants: Sequence[Want]) -> list[str]:
    """Why each ``[start, end)`` of ``loads`` (sorted, non-overlapping) was kept: the reasons
    of the wants overlapping it, in the order of ``wants``, without repeats ("kept" if none).

    One sweep: wants enter a heap by end as the loads pass their start, and leave it once a
    load starts at or after their end, so each load sees only the wants overlapping it.
    """
    order = sorted(range(len(wants)), key=lambda k: wants[k].start)
    active: list[tuple[int, int]] = []        # (end, index into wants)
    p = 0
    out: list[str] = []
    for start, end in loads:
        while p < len(order) and wants[order[p]].start < end:
            k = order[p]
            heapq.heappush(active, (wants[k].end, k))
            p += 1
        while active and active[0][0] <= start:
            heapq.heappop(active)
        if len(active) == 1:
            out.append(wants[active[0][1]].reason or "kept")
            continue
        hits = sorted(k for _, k in active)
        out.append(", ".join(dict.fromkeys(wants[k].reason for k in hits)) or "kept")
    return out


def fit_loads(reasons: Sequence[str], limit: int) -> tuple[list[int], int]:
    """Which of the loads (by index, in order) to keep when there are more than ``limit``, and
    how many module header pages were left out: those (a load kept for ``elf header ...``
    only) go first, from the top of the address space down, so that the stacks (near the top)
    stay; only if that is not enough, the highest loads."""
    excess = len(reasons) - limit
    drop: set[int] = set()
    for i in range(len(reasons) - 1, -1, -1):
        if len(drop) >= excess:
            break
        if all(part.startswith("elf header ") for part in reasons[i].split(", ")):
            drop.add(i)
    return [i for i in range(len(reasons)) if i not in drop][:max(limit, 0)], len(drop)
