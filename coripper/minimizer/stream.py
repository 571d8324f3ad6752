"""Core minimizer: single-pass stream mode and seek-only-what-is-kept file mode.

Standard library only: the crash hook imports this module. Both modes run the same engine
(:mod:`coripper.minimizer.streamengine`) over a *forward-only* source (:mod:`coripper.minimizer.streamin`: the file
mode merely seeks instead of reading the gaps), so they make the same decisions and write
byte-identical cores apart from the provenance note's ``mode`` and ``digest`` (see
docs/coripper.md). Output goes in place or through a spool (:mod:`coripper.minimizer.streamout`).
"""

from __future__ import annotations


from .streamengine import MAX_DYNAMIC, MAX_NOTES, MAX_PHDRS, VDSO_NAME, Engine
from .streamin import CHUNK, HASH_ALGORITHMS, PIPE_SIZE_CAP, CoreFileSource, CoreSource, StreamSource
from .streamin import grow_pipe as _grow_pipe    # its name before the split (tests, bench)
from .streamout import SPOOL_IN_MEMORY, write_through
from .streamtypes import MinimizeOptions, MinimizeReport, ModuleInfo, ThreadInfo

TYPE_CHECKING = False     # typing is not imported at run time (coripper/minimizer/lighttyping.py)
if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = ["CHUNK", "HASH_ALGORITHMS", "MAX_DYNAMIC", "MAX_NOTES", "MAX_PHDRS", "PIPE_SIZE_CAP",
           "SPOOL_IN_MEMORY", "VDSO_NAME", "MinimizeOptions", "MinimizeReport", "ModuleInfo",
           "ThreadInfo", "_grow_pipe", "minimize_file", "minimize_stream"]


def _run(source: CoreSource, dst: BinaryIO | None, options: MinimizeOptions | None,
         mode: str) -> MinimizeReport:
    opts = options or MinimizeOptions()
    return write_through(dst, lambda sink: Engine(source, sink, opts, mode).run())


def minimize_stream(src: BinaryIO, dst: BinaryIO | None, options: MinimizeOptions | None = None
                    ) -> MinimizeReport:
    """Minimize a core read once, in order, from ``src`` (a pipe is fine) into ``dst``.

    Always reads ``src`` to EOF, also when it raises. ``options.hash_algorithm`` ("blake3",
    the default, "sha256", or None) hashes the whole input for the report and the provenance
    note; with
    None the bytes that are not kept are discarded without copying them (splice/lseek).
    ``dst`` may be non-seekable (then only the kept data is buffered) or ``None`` (analyse
    only, as ``--info`` does).
    Raises :class:`CoreFormatError` only when the ELF or program headers are unusable.
    """
    algorithm = (options or MinimizeOptions()).hash_algorithm
    error: ValueError | None = None
    try:
        source = StreamSource(src, algorithm)
    except ValueError as exc:     # unknown algorithm: still drain src below, then raise
        error, source = exc, StreamSource(src, None)
    try:
        if error is not None:
            raise error
        return _run(source, dst, options, "stream")
    finally:
        try:
            source.drain()
        except OSError:
            pass
        source.close()


def minimize_file(src: BinaryIO, dst: BinaryIO | None, options: MinimizeOptions | None = None
                  ) -> MinimizeReport:
    """Minimize a core from a seekable ``src``, reading only the parts that are kept."""
    return _run(CoreFileSource(src), dst, options, "file")
