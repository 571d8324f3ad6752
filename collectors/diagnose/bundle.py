"""The bundle archive: a tar stream (zstd or gzip) written to a temporary name beside the
target, renamed into place only when complete, removed on an interrupt.

Items arrive from the sections' threads; each is passed through the safety filter (private
keys), then through the ``--clean`` cleaner when there is one, and appended to the tar under
one lock. The size budget counts collected bytes before cleaning.
"""

from __future__ import annotations

import io
import os
import tarfile
import threading
import time
from typing import IO, TYPE_CHECKING, Any

from collectors.diagnose.clean import redact_private_keys
from collectors.errors import CollectorError

if TYPE_CHECKING:
    from collectors.diagnose.base import ManifestEntry
    from collectors.diagnose.clean import Cleaner

SUFFIXES = (".tar.zst", ".tar.gz", ".tgz")


class Bundle:
    """An archive being written; use :meth:`commit` or :meth:`abort` exactly once."""

    def __init__(self, path: str, top: str, budget: int, cleaner: Cleaner | None = None) -> None:
        if not path.endswith(SUFFIXES):
            raise CollectorError(f"{path}: the archive must end in .tar.zst or .tar.gz")
        self.path = os.path.abspath(path)
        self.top = top
        self.cleaner = cleaner
        self.entries: list[ManifestEntry] = []
        self.clean_seconds = 0.0
        self.clean_bytes = 0
        self._budget = budget
        self._charged = 0
        self._lock = threading.Lock()
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise CollectorError(f"{directory}: no such directory")
        self.tmp = os.path.join(directory, f".{os.path.basename(self.path)}.tmp{os.getpid()}")
        fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        self._raw: IO[bytes] = os.fdopen(fd, "wb")
        self._zst: Any = None
        try:
            if self.path.endswith(".tar.zst"):
                import zstandard

                self._zst = zstandard.ZstdCompressor(level=3, threads=-1).stream_writer(self._raw, closefd=False)
                self._tar = tarfile.open(fileobj=self._zst, mode="w|", format=tarfile.PAX_FORMAT)
            else:
                self._tar = tarfile.open(fileobj=self._raw, mode="w|gz", format=tarfile.PAX_FORMAT)
        except BaseException:  # cleanup, then re-raised
            self._raw.close()
            os.unlink(self.tmp)
            raise
        self._done = False

    # ---------------------------------------------------------------- budget
    def budget_left(self) -> int:
        return max(self._budget - self._charged, 0)

    def charge(self, n: int) -> None:
        with self._lock:
            self._charged += n

    # ----------------------------------------------------------------- items
    def filter(self, data: bytes) -> bytes:
        """The safety filter, then the cleaner (timed: the bench reads the figures)."""
        data = redact_private_keys(data)
        if self.cleaner is not None:
            start = time.perf_counter()
            data = self.cleaner.clean(data)
            with self._lock:
                self.clean_seconds += time.perf_counter() - start
                self.clean_bytes += len(data)
        return data

    def add(self, entry: ManifestEntry, data: bytes | None, binary: bool = False) -> None:
        """Record *entry*; write *data* (filtered unless *binary*) as ``sections/<entry.path>``."""
        if data is not None:
            data = data if binary else self.filter(data)
            self._write(f"sections/{entry.path}", data)
        with self._lock:
            self.entries.append(entry)

    def add_top(self, name: str, data: bytes) -> None:
        """A file at the top of the archive (report.html, manifest.json), already filtered."""
        self._write(name, data)

    def _write(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(f"{self.top}/{name}")
        info.size = len(data)
        info.mtime = int(time.time())
        info.mode = 0o644
        with self._lock:
            if self._done:
                return
            self._tar.addfile(info, io.BytesIO(data))

    # ------------------------------------------------------------ finishing
    def commit(self) -> str:
        """Finish the stream, fsync, rename into place; returns the archive path."""
        with self._lock:
            self._done = True
            self._tar.close()
            if self._zst is not None:
                self._zst.flush(1)  # zstandard.FLUSH_FRAME
                self._zst.close()
            self._raw.flush()
            os.fsync(self._raw.fileno())
            self._raw.close()
        os.chmod(self.tmp, 0o600)
        os.rename(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial archive (Ctrl-C, an error): nothing is left behind."""
        with self._lock:
            self._done = True
            # The tar stream first: left open, it would write its end into the closed file
            # when garbage-collected ("Exception ignored in _Stream.__del__").
            for close in (self._tar.close, self._raw.close):
                try:
                    close()
                except (OSError, ValueError):  # a failed flush of a broken stream, on the way out
                    pass
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass
