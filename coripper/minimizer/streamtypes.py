"""What the minimizer takes and returns: :class:`MinimizeOptions`, :class:`MinimizeReport`.

Standard library only (the crash hook imports it through :mod:`coripper.minimizer.stream`, which
re-exports every name here).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class MinimizeOptions:
    """What to keep beyond the defaults."""

    keep_heap: bool = False
    max_stack: int | None = None                 # bytes per thread; None = to the end of the segment
    keep_ranges: tuple[tuple[int, int], ...] = ()
    hash_algorithm: str | None = "blake3"        # stream mode: hash of the input ("blake3",
                                                 # "sha256"), or None
    source_compression: str | None = None        # set by coripper.minimizer.compressed: what the input
                                                 # was decompressed from (provenance only)
    analysis_budget: float | None = None         # seconds of analysis (I/O waits not counted);
                                                 # past it the rest is drained, not copied, and
                                                 # the result is truncated. None = no budget


@dataclass
class ThreadInfo:
    tid: int
    signal: int
    pc: int
    sp: int


@dataclass
class ModuleInfo:
    path: str
    start: int
    end: int
    build_id: str | None


@dataclass
class MinimizeReport:
    """What a minimization read, kept and noticed."""

    machine: str
    bytes_in: int
    bytes_out: int
    truncated: bool
    threads: list[ThreadInfo] = field(default_factory=list)     # crash thread first
    modules: list[ModuleInfo] = field(default_factory=list)
    kept: list[tuple[int, int, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    hash_algorithm: str | None = None           # what ``digest`` is (stream mode only)
    digest: str | None = None                   # hex digest of the whole input
    budget_exceeded: bool = False               # analysis stopped at ``analysis_budget``
                                                # (then ``truncated`` is set too)

    def crash_site(self) -> tuple[str | None, int]:
        """(module path, pc offset from the module's start) of the crash thread."""
        if not self.threads:
            return None, 0
        pc = self.threads[0].pc
        for m in self.modules:
            if m.start <= pc < m.end:
                return m.path, pc - m.start
        return None, pc
