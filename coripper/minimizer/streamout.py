"""Output of the minimizer: write in place when the destination allows, else spool.

Standard library only (the crash hook imports it through :mod:`coripper.minimizer.stream`). The core
writer patches the ELF header and program headers after the data, so it needs a seekable sink;
a pipe or an append-only file gets a spool holding only the kept data, copied at the end.
"""

from __future__ import annotations

import io
import os

from .streamin import CHUNK

TYPE_CHECKING = False     # typing is not imported at run time (coripper/minimizer/lighttyping.py)
if TYPE_CHECKING:
    from typing import Any, BinaryIO, Callable, TypeVar, cast
else:
    from .lighttyping import cast

SPOOL_IN_MEMORY = 16 << 20      # kept data buffered in RAM before spilling to a temp file

if TYPE_CHECKING:
    T = TypeVar("T")


class NullSink:
    """A seekable sink that discards data (``--info``)."""

    def __init__(self) -> None:
        self._pos = 0
        self._end = 0

    def write(self, data: bytes | memoryview) -> int:
        self._pos += len(data)
        self._end = max(self._end, self._pos)
        return len(data)

    def seek(self, pos: int, whence: int = 0) -> int:
        self._pos = pos if whence == 0 else self._end + pos
        return self._pos

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True


def is_seekable(f: Any) -> bool:
    """True when ``f`` can be written in place (seekable and not opened for appending)."""
    try:
        if not f.seekable():
            return False
    except (AttributeError, OSError, ValueError):
        return False
    try:
        import fcntl
        # O_APPEND ("ab", `>>`): every write lands at the end whatever the position, so the
        # header patches would be appended instead of written in place. Spool instead.
        return not fcntl.fcntl(f.fileno(), fcntl.F_GETFL) & os.O_APPEND
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return True     # no descriptor (BytesIO, a wrapper): seekable() is the truth


def write_through(dst: BinaryIO | None, produce: Callable[[BinaryIO], T]) -> T:
    """Call ``produce`` with a seekable sink for ``dst`` and return its result.

    ``dst`` itself when it can be written in place; a discarding sink when ``dst`` is None; else
    a spool copied to ``dst`` once ``produce`` returns (nothing reaches ``dst`` if it raises).
    """
    if dst is None:
        return produce(cast("BinaryIO", NullSink()))
    if is_seekable(dst):
        return produce(dst)
    import shutil  # only a pipe or an append-only output needs a spool
    import tempfile

    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
        result = produce(cast("BinaryIO", spool))
        spool.seek(0)
        shutil.copyfileobj(spool, dst, CHUNK)
    return result
