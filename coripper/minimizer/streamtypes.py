"""What the minimizer takes and returns: :class:`MinimizeOptions`, :class:`MinimizeReport`.

Standard library only (the crash hook imports it through :mod:`coripper.minimizer.stream`, which
re-exports every name here). Plain classes with ``__slots__``, not dataclasses: importing
:mod:`dataclasses` (and the :mod:`inspect` it pulls in) and generating their methods would cost
``coripper CORE > OUT`` more time than minimizing a typical core (bench/coripper_start.py).
"""

from __future__ import annotations


class _Record:
    """``repr`` and ``==`` over the ``__slots__`` of a subclass, as a dataclass has them."""

    __slots__: tuple[str, ...] = ()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    __hash__ = None  # type: ignore[assignment]   # mutable, as a dataclass without frozen=True


class MinimizeOptions(_Record):
    """What to keep beyond the defaults.

    ``max_stack``: bytes per thread (None: to the end of the segment). ``hash_algorithm``:
    stream mode's hash of the input ("blake3", "sha256") or None. ``source_compression``: set by
    :mod:`coripper.minimizer.compressed`, what the input was decompressed from (provenance only).
    ``analysis_budget``: seconds of analysis (I/O waits not counted); past it the rest is
    drained, not copied, and the result is truncated. None = no budget.
    """

    __slots__ = ("keep_heap", "max_stack", "keep_ranges", "hash_algorithm", "source_compression",
                 "analysis_budget")

    def __init__(self, keep_heap: bool = False, max_stack: int | None = None,
                 keep_ranges: tuple[tuple[int, int], ...] = (), hash_algorithm: str | None = "blake3",
                 source_compression: str | None = None, analysis_budget: float | None = None) -> None:
        self.keep_heap = keep_heap
        self.max_stack = max_stack
        self.keep_ranges = keep_ranges
        self.hash_algorithm = hash_algorithm
        self.source_compression = source_compression
        self.analysis_budget = analysis_budget


class ThreadInfo(_Record):
    """One thread of the core: its id, signal, pc and sp."""

    __slots__ = ("tid", "signal", "pc", "sp")

    def __init__(self, tid: int, signal: int, pc: int, sp: int) -> None:
        self.tid = tid
        self.signal = signal
        self.pc = pc
        self.sp = sp


class ModuleInfo(_Record):
    """One mapped module: its path, address range and build-id (hex)."""

    __slots__ = ("path", "start", "end", "build_id")

    def __init__(self, path: str, start: int, end: int, build_id: str | None) -> None:
        self.path = path
        self.start = start
        self.end = end
        self.build_id = build_id


class MinimizeReport(_Record):
    """What a minimization read, kept and noticed.

    ``threads``: crash thread first. ``hash_algorithm``: what ``digest`` is (stream mode only),
    ``digest`` the hex digest of the whole input. ``budget_exceeded``: analysis stopped at
    ``analysis_budget`` (then ``truncated`` is set too).
    """

    __slots__ = ("machine", "bytes_in", "bytes_out", "truncated", "threads", "modules", "kept",
                 "warnings", "hash_algorithm", "digest", "budget_exceeded")

    def __init__(self, machine: str, bytes_in: int, bytes_out: int, truncated: bool,
                 threads: list[ThreadInfo] | None = None, modules: list[ModuleInfo] | None = None,
                 kept: list[tuple[int, int, str]] | None = None, warnings: list[str] | None = None,
                 hash_algorithm: str | None = None, digest: str | None = None,
                 budget_exceeded: bool = False) -> None:
        self.machine = machine
        self.bytes_in = bytes_in
        self.bytes_out = bytes_out
        self.truncated = truncated
        self.threads: list[ThreadInfo] = [] if threads is None else threads
        self.modules: list[ModuleInfo] = [] if modules is None else modules
        self.kept: list[tuple[int, int, str]] = [] if kept is None else kept
        self.warnings: list[str] = [] if warnings is None else warnings
        self.hash_algorithm = hash_algorithm
        self.digest = digest
        self.budget_exceeded = budget_exceeded

    def crash_site(self) -> tuple[str | None, int]:
        """(module path, pc offset from the module's start) of the crash thread."""
        if not self.threads:
            return None, 0
        pc = self.threads[0].pc
        for m in self.modules:
            if m.start <= pc < m.end:
                return m.path, pc - m.start
        return None, pc
