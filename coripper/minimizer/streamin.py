"""Forward-only input of the minimizer: a stream (pipe, stdin) or a seekable file.

Standard library only (the crash hook imports it through :mod:`coripper.minimizer.stream`). A
:class:`CoreSource` delivers the core in offset order; what is not kept is skipped as cheaply as the
input allows (splice(2) to /dev/null, lseek, or seek), optionally hashing everything on the way.
"""

from __future__ import annotations

import abc
import errno
import io
import os
import stat
import time

from .streambudget import Waits

TYPE_CHECKING = False     # typing is not imported at run time (coripper/minimizer/lighttyping.py)
if TYPE_CHECKING:
    from typing import BinaryIO, Callable, Protocol, cast
else:
    from .lighttyping import Protocol, cast

if TYPE_CHECKING:  # imported when a hash is asked for: file mode never hashes
    import queue
    import threading

CHUNK = 1 << 20                 # read size; also the only large buffer we hold
READ_AHEAD = 64 << 10           # a stream read shorter than this reads this much ahead
HASH_ALGORITHMS = ("blake3", "sha256")   # what ``MinimizeOptions.hash_algorithm`` accepts besides None
PIPE_SIZE_CAP = 16 << 20        # F_SETPIPE_SZ at most this (kernel memory, not our RSS)
_F_SETPIPE_SZ = 1031            # fcntl.F_SETPIPE_SZ / F_GETPIPE_SZ (Linux fcntl.h)
_F_GETPIPE_SZ = 1032


class CoreSource(abc.ABC):
    """Forward-only reader. ``pos`` never decreases; gaps are skipped by reading (stream) or
    seeking (file). ``waits`` sums the seconds spent reading and skipping (the analysis budget
    does not count them)."""

    def __init__(self, src: BinaryIO) -> None:
        self.src = src
        self.pos = 0
        self.eof = False
        self.buf = bytearray(CHUNK)
        self.mv = memoryview(self.buf)
        self.waits = Waits()

    @abc.abstractmethod
    def _fill(self, n: int) -> int:
        """Read up to ``n`` bytes at ``pos`` into ``mv``; return the count (0 = EOF)."""

    @abc.abstractmethod
    def skip_to(self, offset: int) -> None:
        """Move forward to ``offset`` without delivering the bytes in between."""

    def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (shorter at EOF); for headers and notes."""
        t = time.perf_counter()
        self.skip_to(offset)
        out = bytearray()
        while len(out) < size and not self.eof:
            n = self._fill(min(CHUNK, size - len(out)))
            out += self.mv[:n]
        self.waits.seconds += time.perf_counter() - t
        return bytes(out)

    def copy(self, offset: int, size: int, consume: Callable[[memoryview], None]) -> int:
        """Feed ``size`` bytes at ``offset`` to ``consume`` in chunks; return bytes delivered.

        Only the reading counts as waiting, not ``consume``."""
        waits, clock = self.waits, time.perf_counter
        t = clock()
        self.skip_to(offset)
        waits.seconds += clock() - t
        done = 0
        while done < size and not self.eof:
            t = clock()
            n = self._fill(min(CHUNK, size - done))
            waits.seconds += clock() - t
            if n:
                consume(self.mv[:n])
                done += n
        return done

    def drain(self) -> None:
        """Read to EOF (stream mode: the kernel waits until its pipe is drained)."""
        return None     # a seekable file has nothing to drain

    def rewind(self, offset: int) -> None:
        """Go back to ``offset`` if the source can (file mode); a stream cannot."""
        return None

    def total(self) -> int:
        """Size of the input as far as known (bytes read or skipped, for a stream)."""
        return self.pos


class StreamSource(CoreSource):
    """Sequential reader of a stream: reads what is kept, discards the rest as cheaply as the
    source allows, and optionally hashes everything.

    Hashing (``algorithm`` not None) needs every byte in user space: both hashers release the
    GIL, so a worker thread hashes chunk N while chunk N+1 is read; NBUF buffers rotate and a
    semaphore keeps a buffer from being refilled before the worker has hashed it.

    Without hashing, the bytes nobody needs never enter user space: a pipe is spliced into
    /dev/null (splice(2): the pipe's pages are released in the kernel, no copy), a regular file
    (``coripper - < CORE``) is skipped with lseek; anything else is read into one buffer.
    """

    NBUF = 4

    def __init__(self, src: BinaryIO, algorithm: str | None = "blake3") -> None:
        # First, so that an unknown algorithm (ValueError) has consumed nothing from ``src``.
        hasher = new_hasher(algorithm) if algorithm is not None else None
        super().__init__(src)
        self.algorithm = algorithm
        self._digest: str | None = None
        self._pending = memoryview(b"")          # bytes read but not delivered yet
        self._ahead: memoryview | None = None     # read-ahead buffer (_pending is part of it)
        self._readinto: Callable[[memoryview], int | None] | None = getattr(src, "readinto", None)
        self._fd: int | None = None
        self._kind = ""             # "pipe" | "file" | "" (anything else: read and discard)
        self._devnull: int | None = None
        self._open_fd(src)
        self._worker: threading.Thread | None = None
        if hasher is not None:
            import queue
            import threading

            self.hasher = hasher
            self._bufs = [memoryview(bytearray(CHUNK)) for _ in range(self.NBUF)]
            self._next = 0
            self._free = threading.Semaphore(self.NBUF)
            self._queue: queue.SimpleQueue[memoryview | None] = queue.SimpleQueue()
            self._worker = threading.Thread(target=self._hash_loop, name="coripper-hash",
                                             daemon=True)
            self._worker.start()

    def _open_fd(self, src: BinaryIO) -> None:
        """Switch to the file descriptor when ``src`` has one (pipe or regular file)."""
        try:
            fd = src.fileno()
            mode = os.fstat(fd).st_mode
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return
        if stat.S_ISFIFO(mode):
            self._kind = "pipe"
            grow_pipe(fd)
        elif stat.S_ISREG(mode):
            self._kind = "file"
        else:
            return
        if isinstance(src, io.BufferedReader):
            # Bytes the buffer already holds come first; read1 returns them all (or does one
            # raw read straight into the result), leaving the buffer empty, so from here on
            # the descriptor's position is the stream's position.
            self._pending = memoryview(src.read1(CHUNK))
        self._fd = fd
        self._readinto = io.FileIO(fd, "rb", closefd=False).readinto

    def _read_some(self, mv: memoryview) -> int:
        if self._pending:
            n = min(len(mv), len(self._pending))
            mv[:n] = self._pending[:n]
            self._pending = self._pending[n:]
            return n
        if self._readinto is not None:
            if len(mv) >= READ_AHEAD:
                return self._readinto(mv) or 0
            # Small reads (headers, a module's first page: up to ~65,530 in a row) read ahead
            # and are served from the buffer: one system call per 64 KiB, not per page.
            if self._ahead is None:
                self._ahead = memoryview(bytearray(READ_AHEAD))
            got = self._readinto(self._ahead) or 0
            n = min(got, len(mv))
            mv[:n] = self._ahead[:n]
            self._pending = self._ahead[n:got]
            return n
        data = self.src.read(len(mv)) or b""
        mv[:len(data)] = data
        return len(data)

    def _hash_loop(self) -> None:
        while (item := self._queue.get()) is not None:
            self.hasher.update(item)
            self._free.release()

    def _fill(self, n: int) -> int:
        if self.eof:
            return 0
        if self.algorithm is None:
            got = self._read_some(self.mv[:n])
        else:
            self._free.acquire()
            self.mv = self._bufs[self._next]
            self._next = (self._next + 1) % self.NBUF
            got = self._read_some(self.mv[:n])
            if got:
                self._queue.put(self.mv[:got])
            else:
                self._free.release()
        if got == 0:
            self.eof = True
        self.pos += got
        return got

    def _discard(self, n: int) -> None:
        """Consume ``n`` bytes nobody needs (fewer at EOF)."""
        if self._pending and n > 0 and self.algorithm is None:
            k = min(n, len(self._pending))
            self._pending = self._pending[k:]
            self.pos += k
            n -= k
        if self.algorithm is None and self._fd is not None and n > 0:
            if self._kind == "file":
                self._seek_forward(n)
                return
            if self._kind == "pipe" and self._splice_to_null(n):
                return
        while n > 0 and not self.eof:
            got = self._fill(min(CHUNK, n))
            n -= got

    def _seek_forward(self, n: int) -> None:
        assert self._fd is not None
        cur = os.lseek(self._fd, 0, os.SEEK_CUR)
        size = os.fstat(self._fd).st_size
        to = min(cur + n, max(size, cur))
        os.lseek(self._fd, to, os.SEEK_SET)
        self.pos += to - cur
        if to < cur + n:
            self.eof = True

    def _splice_to_null(self, n: int) -> bool:
        """splice(2) ``n`` bytes from the pipe into /dev/null; False if splice is unusable."""
        assert self._fd is not None
        splice = getattr(os, "splice", None)
        try:
            if splice is None:
                return False
            if self._devnull is None:
                self._devnull = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
            while n > 0:
                got = splice(self._fd, self._devnull, min(n, 1 << 30))
                if got == 0:
                    self.eof = True
                    return True
                self.pos += got
                n -= got
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EBADF):
                raise
            self._kind = ""         # e.g. no splice_write on this kernel's /dev/null: read instead
            return False
        return True

    def skip_to(self, offset: int) -> None:
        if self.pos < offset and not self.eof:
            self._discard(offset - self.pos)

    def drain(self) -> None:
        t = time.perf_counter()
        while not self.eof:
            self._discard(1 << 62)
        self.waits.seconds += time.perf_counter() - t

    def hexdigest(self) -> str | None:
        """Hex digest of everything read, or None without hashing (stops the worker; call once
        reading is over)."""
        if self.algorithm is None:
            return None
        if self._digest is None:
            self.close()
            self._digest = self.hasher.hexdigest()
        return self._digest

    def close(self) -> None:
        if self._worker is not None and self._worker.is_alive():
            self._queue.put(None)
            self._worker.join()
        if self._devnull is not None:
            os.close(self._devnull)
            self._devnull = None


class Hasher(Protocol):
    """What hashlib's and blake3's hash objects have in common."""

    def update(self, data: memoryview, /) -> object: ...

    def hexdigest(self) -> str: ...


def new_hasher(algorithm: str) -> Hasher:
    """A hash object for ``algorithm`` (one of :data:`HASH_ALGORITHMS`).

    BLAKE3 (the default) is a cryptographic hash about 3.5x faster than SHA-256 here, fast enough
    to keep up with a pipe; it comes from the ``blake3`` package, imported only when asked for, so
    the crash hook (standard library only, ``hash_core`` uses SHA-256) never loads it.
    """
    if algorithm == "blake3":
        try:
            import blake3
        except ImportError as exc:
            raise ValueError("hash algorithm 'blake3' needs the blake3 package "
                             "(pip install blake3), or choose sha256") from exc
        return cast(Hasher, blake3.blake3())
    if algorithm == "sha256":
        import hashlib

        return hashlib.sha256()
    raise ValueError(f"unknown hash algorithm {algorithm!r} "
                     f"(known: {', '.join(HASH_ALGORITHMS)}, or None)")


def grow_pipe(fd: int) -> None:
    """Enlarge the input pipe (F_SETPIPE_SZ) up to ``/proc/sys/fs/pipe-max-size``: the writer
    (the kernel dumping the core) and we wake each other up less often."""
    import fcntl
    try:
        with open("/proc/sys/fs/pipe-max-size", "rb") as f:
            want = min(int(f.read().strip() or 0), PIPE_SIZE_CAP)
    except (OSError, ValueError):
        want = CHUNK
    try:
        if fcntl.fcntl(fd, _F_GETPIPE_SZ) >= want:
            return
    except OSError:
        return
    for size in (want, CHUNK):
        try:
            fcntl.fcntl(fd, _F_SETPIPE_SZ, size)
            return
        except OSError:     # EPERM over the per-user pipe quota, EBUSY if shrinking: keep it
            continue


class CoreFileSource(CoreSource):
    """Seekable file: a gap is skipped by moving ``pos`` (one seek before the next read)."""

    def __init__(self, src: BinaryIO) -> None:
        super().__init__(src)
        try:
            self.size = os.fstat(src.fileno()).st_size
        except (OSError, AttributeError, ValueError):
            self.size = src.seek(0, os.SEEK_END)
        self._at: int | None = None

    def _fill(self, n: int) -> int:
        if self.eof:
            return 0
        if self._at != self.pos:
            self.src.seek(self.pos)
        got = cast(io.BufferedIOBase, self.src).readinto(self.mv[:n]) or 0
        if got == 0:
            self.eof = True
            self._at = None
            return 0
        self.pos += got
        self._at = self.pos
        return got

    def skip_to(self, offset: int) -> None:
        if offset > self.pos:
            self.pos = offset
            if offset >= self.size:
                self.eof = True

    def total(self) -> int:
        return self.size

    def rewind(self, offset: int) -> None:
        # gdb's gcore writes PT_NOTE after the memory: once the notes are read, a file can
        # go back to the data. (The kernel writes notes first; a stream of a gcore core keeps
        # only the notes, with warnings.)
        if offset < self.pos:
            self.pos = offset
            self.eof = offset >= self.size
