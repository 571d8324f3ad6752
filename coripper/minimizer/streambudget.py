"""The minimizer's analysis clock: wall-clock time spent analysing, apart from I/O waits.

Standard library only (the crash hook imports it through :mod:`coripper.minimizer.stream`). The budget
(``MinimizeOptions.analysis_budget``) counts the engine's whole run *minus* the time spent
waiting on the input (reading, splicing, seeking: the kernel writing its core at its own pace)
and on the output (writing kept data). So a big core streaming in slowly never uses it up, and
whatever the engine computes, expected or not, does (see docs/coripper.md, "Complexity and the
analysis budget").
"""

from __future__ import annotations

import time


class BudgetExceeded(Exception):
    """Raised inside the copy loop when the analysis budget is used up (never escapes it)."""


class Waits:
    """Seconds spent waiting on I/O, summed by the source and by the core writer."""

    __slots__ = ("seconds",)

    def __init__(self) -> None:
        self.seconds = 0.0


class AnalysisClock:
    """Measures analysis time against ``budget`` seconds (``None``: no budget)."""

    def __init__(self, budget: float | None, waits: Waits) -> None:
        self.budget = budget
        self.waits = waits
        self.start = time.perf_counter()

    def spent(self) -> float:
        """Seconds of analysis so far: wall clock since the start minus I/O waits."""
        return time.perf_counter() - self.start - self.waits.seconds

    def over(self) -> bool:
        """True once the analysis time exceeds the budget (called per chunk: kept cheap)."""
        budget = self.budget
        return budget is not None and \
            time.perf_counter() - self.start - self.waits.seconds > budget
