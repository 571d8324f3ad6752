"""Progress of long work on stderr: only on a terminal, only once the work has taken more
than a second, never in the crash hook.

One line, redrawn at most five times a second (``\\r`` + the text + erase to the end of the
line) and erased when the work is done, so that nothing is left between the command's
output lines. Shown only when stderr is a terminal: never on a pipe or in a file, and never
in the crash hook or its post-processing (they run with ``CRASHKIT_HOOK_CHILD`` set, and
with no terminal anyway). ``CRASHKIT_PROGRESS=0`` turns it off. The line has no colour, so
``NO_COLOR`` does not change it.

Standard library only and nothing imported at start-up but :mod:`os`, :mod:`sys` and
:mod:`time`; every package may use it (``coripper`` imports nothing of ours).

    with Progress("decompressing core", total=size) as progress:
        for chunk in chunks:
            ...
            progress.update(done)
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

DELAY = 1.0
INTERVAL = 0.2


def wanted(stream: TextIO | None = None) -> bool:
    """Whether progress may be shown on *stream* (default stderr): a terminal, not the hook,
    not turned off with ``CRASHKIT_PROGRESS=0``."""
    stream = sys.stderr if stream is None else stream
    if os.environ.get("CRASHKIT_HOOK_CHILD") or os.environ.get("CRASHKIT_PROGRESS") == "0":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed, or not a real file
        return False


def human_bytes(n: float) -> str:
    """``512 B``, ``1.5 KiB``, ``23.4 MiB``, ``2.0 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{int(n)} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - the loop returns


def describe(label: str, done: int, total: int | None, elapsed: float) -> str:
    """The progress line (pure): ``label: 1.2 GiB of 4.0 GiB (30%), 85.0 MiB/s``."""
    text = f"{label}: {human_bytes(done)}"
    if total:
        text += f" of {human_bytes(total)} ({min(100, done * 100 // total)}%)"
    if elapsed > 0:
        text += f", {human_bytes(done / elapsed)}/s"
    return text


class Progress:
    """A progress line for work measured in bytes (*total* if known)."""

    def __init__(self, label: str, total: int | None = None, *, stream: TextIO | None = None,
                 enabled: bool | None = None, delay: float = DELAY) -> None:
        self.label = label
        self.total = total
        self.stream = sys.stderr if stream is None else stream
        self.enabled = wanted(self.stream) if enabled is None else enabled
        self.start = time.monotonic()
        self._show_after = self.start + delay
        self._next = self._show_after
        self.shown = False

    def update(self, done: int) -> None:
        """Report *done* bytes; cheap when nothing is drawn (one clock read)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + INTERVAL
        line = describe(self.label, done, self.total, now - self.start)
        width = _columns(self.stream)
        if width:
            line = line[: width - 1]
        try:
            self.stream.write(f"\r{line}\x1b[K")
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False
            return
        self.shown = True

    def close(self) -> None:
        """Erase the line if one was drawn."""
        if self.shown:
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self.shown = False
        self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _columns(stream: TextIO) -> int | None:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return None
