"""Kernel log sources: thin readers that turn where the host keeps its kernel log into lines.

Each source has a ``name``, ``exists()`` and ``units(state)``. ``units`` yields
:class:`LogUnit` objects (one per file, boot or pstore event), each with the lines still
to scan and a ``finish()`` that records in ``state`` (the source's cursor section, see
:mod:`collectors.oops.cursor`) that the unit was fully processed. Every path and command
is injectable so tests can point a source at a fixture tree or a private journal file.

Sources never parse reports; :mod:`collectors.oops.parse` does that.
"""

from __future__ import annotations

import bz2
import errno
import glob
import gzip
import io
import logging
import lzma
import os
import re
import shutil
import stat
import subprocess
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from collectors.errors import OopsError
from collectors.oops.cursor import load_marks, make_mark, resume_offset

log = logging.getLogger(__name__)

# Longest line passed on; the rest of a longer line is dropped (a 10 MB line of garbage
# must not become a 10 MB title or hold memory).
MAX_LINE = 1 << 20
# A kmsg record is at most CONSOLE_EXT_LOG_MAX (8 KiB) in the kernel; read() with a smaller
# buffer fails with EINVAL.
KMSG_READ = 16384
COMMAND_TIMEOUT = 300.0
SOURCE_NAMES = ("kmsg", "journal", "syslog", "pstore", "kdump")


@dataclass
class LogUnit:
    """One log to scan: its lines, and what to remember once they are all processed."""

    source: str
    origin: str
    lines: Iterator[str]
    finish: Callable[[], None] = lambda: None
    errors: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- command runner


@dataclass(frozen=True)
class CommandResult:
    """Outcome of one external command (``error`` set when it could not run at all)."""

    argv: tuple[str, ...]
    rc: int | None
    stdout: bytes
    stderr: bytes
    error: str | None = None


def run_command(argv: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> CommandResult:
    """Run a command without a shell, with ``LC_ALL=C`` and a timeout; never raises."""
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LC_ALL": "C",
           "SYSTEMD_PAGER": "", "PAGER": "cat"}
    try:
        proc = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, env=env, check=False)
    except FileNotFoundError:
        return CommandResult(tuple(argv), None, b"", b"", "not installed")
    except subprocess.TimeoutExpired:
        return CommandResult(tuple(argv), None, b"", b"", f"timed out after {timeout:g} s")
    except OSError as exc:
        return CommandResult(tuple(argv), None, b"", b"", str(exc))
    return CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)


def decode_line(raw: bytes) -> str:
    """Bytes of one log line to text (invalid UTF-8 replaced, NULs become spaces)."""
    return raw.decode("utf-8", "replace").replace("\x00", " ").rstrip("\r\n")


def split_text_lines(data: bytes) -> Iterator[str]:
    """Lines of a text blob, each capped at ``MAX_LINE`` bytes."""
    for raw in data.split(b"\n"):
        yield decode_line(raw[:MAX_LINE])


# ---------------------------------------------------------------- log files


_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\xfd7zXZ\x00", "xz"), (b"BZh", "bzip2"),
          (b"\x28\xb5\x2f\xfd", "zstd"))


class LogFile:
    """Random access to one log file's content, decompressed by its magic bytes.

    Opened with ``O_NOFOLLOW`` (a symlink in /var/log is not followed) and only when it
    is a regular file. ``size`` is known only for uncompressed files.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OopsError(f"{path}: not a regular file")
            raw = os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
        self.inode = st.st_ino
        self._raw = raw
        magic = raw.read(6)
        raw.seek(0)
        self.compression = next((name for m, name in _MAGIC if magic.startswith(m)), None)
        self.size: int | None = st.st_size if self.compression is None else None
        self._f: BinaryIO = self._open_stream(raw)

    def _open_stream(self, raw: BinaryIO) -> BinaryIO:
        if self.compression == "gzip":
            return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
        if self.compression == "xz":
            return lzma.LZMAFile(raw)  # type: ignore[return-value]
        if self.compression == "bzip2":
            return bz2.BZ2File(raw)  # type: ignore[return-value]
        if self.compression == "zstd":
            import zstandard  # lazy: only for zstd-rotated logs

            # stream_reader ends silently on a bare or cut frame header: check it up front
            # and report it where decoder errors are reported, when the lines are read.
            try:
                zstandard.get_frame_parameters(raw.read(18))
            except zstandard.ZstdError as exc:
                return io.BufferedReader(_Failing(exc))  # type: ignore[return-value]
            finally:
                raw.seek(0)
            # The zstd reader lacks readline() and seek(): buffer it, see _seek().
            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            return io.BufferedReader(_Unseekable(reader))  # type: ignore[return-value]
        return raw

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes of content at ``offset`` (short at the end)."""
        if length <= 0:
            return b""
        self._seek(offset)
        return self._f.read(length)

    def _seek(self, offset: int) -> None:
        if self.compression != "zstd":
            self._f.seek(offset)
            return
        # The zstd reader cannot seek: start over and read up to the offset.
        self._raw.seek(0)
        self._f = self._open_stream(self._raw)
        while offset > 0:
            chunk = self._f.read(min(offset, 1 << 20))
            if not chunk:
                return
            offset -= len(chunk)

    def lines(self, offset: int, *, complete_only: bool) -> Iterator[tuple[str, int]]:
        """``(line, end offset)`` from ``offset``; a last line without ``\\n`` is left for
        later when ``complete_only`` (the file is still being written)."""
        self._seek(offset)
        pos = offset
        while True:
            raw = self._f.readline(MAX_LINE)
            if not raw:
                return
            length = len(raw)
            if not raw.endswith(b"\n") and length == MAX_LINE:
                while True:  # drop the rest of an overlong line
                    more = self._f.readline(MAX_LINE)
                    length += len(more)
                    if not more or more.endswith(b"\n"):
                        break
            elif not raw.endswith(b"\n") and complete_only:
                return
            pos += length
            yield decode_line(raw), pos

    def close(self) -> None:
        """Close the file."""
        try:
            self._f.close()
        finally:
            self._raw.close()


class _Failing(io.RawIOBase):
    """A stream whose every read raises the error found when it was opened."""

    def __init__(self, error: Exception) -> None:
        self._error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise self._error


class _Unseekable(io.RawIOBase):
    """A decompressing reader as a raw stream, so io.BufferedReader can give readline()."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        data = self._reader.read(len(buf))
        buf[: len(data)] = data
        return len(data)


# Errors decompressors raise on corrupt input, besides OSError.
_READ_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, lzma.LZMAError, zlib.error,
                                                 ValueError, OopsError)


def file_units(source: str, paths: Sequence[str], state: dict[str, Any], *,
               live: Sequence[str] = ()) -> Iterator[LogUnit]:
    """Units for log files, resuming each where a previous run stopped (by content).

    ``paths`` should be ordered oldest first so the marks of a rotated file are matched
    before its path is reused. ``live`` files are still being written: their last,
    unterminated line is left for the next run. Marks of files that vanished are dropped.
    """
    old_marks = load_marks(state)
    new_marks: dict[str, Any] = {}
    failed: set[str] = set()
    for path in paths:
        try:
            logf = LogFile(path)
        except _READ_ERRORS as exc:
            log.warning("%s: %s: skipped: %s", source, path, _one_line(exc))
            failed.add(path)
            continue
        unit = LogUnit(source, path, iter(()))
        try:
            start = resume_offset(old_marks, logf.read_at, logf.size)
        except _READ_ERRORS as exc:
            log.warning("%s: %s: skipped: %s", source, path, _one_line(exc))
            failed.add(path)
            logf.close()
            continue
        end = [start]

        def lines(logf: LogFile = logf, start: int = start, end: list[int] = end,
                  unit: LogUnit = unit, path: str = path) -> Iterator[str]:
            try:
                for line, pos in logf.lines(start, complete_only=path in live):
                    end[0] = pos
                    yield line
            except Exception as exc:  # noqa: BLE001 - any decoder's error (zstd has its own)
                # A corrupt archive ends its unit early; what was read is still scanned.
                unit.errors.append(f"{path}: {_one_line(exc)}")
                log.warning("%s: %s: read error after byte %d: %s", source, path, end[0],
                            _one_line(exc))

        def finish(logf: LogFile = logf, end: list[int] = end, unit: LogUnit = unit,
                   path: str = path) -> None:
            try:
                if not unit.errors:
                    new_marks[path] = make_mark(path, logf.inode, end[0], logf.read_at).to_json()
                else:
                    failed.add(path)
            except _READ_ERRORS as exc:
                log.warning("%s: %s: cannot record position: %s", source, path, _one_line(exc))
                failed.add(path)
            finally:
                logf.close()

        unit.lines = lines()
        unit.finish = finish
        yield unit
    # Keep the old marks of files that could not be read this time (perhaps only for now).
    stored = state.get("files") if isinstance(state.get("files"), dict) else {}
    for path in failed:
        if path in stored and path not in new_marks and os.path.lexists(path):
            new_marks[path] = stored[path]
    state["files"] = new_marks


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join((str(exc) or type(exc).__name__).split())


class FileSource:
    """A log file named on the command line (plain or compressed)."""

    def __init__(self, path: str, name: str = "file") -> None:
        self.name = name
        self.path = os.path.abspath(path)

    def exists(self) -> bool:
        """True when the file exists."""
        return os.path.exists(self.path)

    def units(self, state: dict[str, Any]) -> Iterator[LogUnit]:
        """The file as one unit."""
        # Keep marks of every file ever given, so alternating FILE arguments keep their place.
        section = state.setdefault("by_path", {})
        sub = section.setdefault(self.path, {})
        yield from file_units(self.name, [self.path], sub)


# Rotated siblings: kern.log.1, kern.log.2.gz, messages-20251124, messages-20251124.xz
_ROTATED = re.compile(r"^(?:\.(?P<num>\d+)|-(?P<date>\d{8,10}))(?:\.(?:gz|xz|bz2|zst))?$")


def rotated_family(base: str) -> list[str]:
    """``base`` and its rotated siblings, oldest first: dated ones (``-YYYYMMDD``) by date,
    then numbered ones from the highest number (oldest) down, then ``base`` itself."""
    dated: list[tuple[int, str]] = []
    numbered: list[tuple[int, str]] = []
    for path in glob.glob(glob.escape(base) + ".*") + glob.glob(glob.escape(base) + "-*"):
        m = _ROTATED.match(path[len(base):])
        if not m:
            continue
        if m.group("num") is not None:
            numbered.append((-int(m.group("num")), path))
        else:
            dated.append((int(m.group("date")), path))
    ordered = [p for _k, p in sorted(dated)] + [p for _k, p in sorted(numbered)]
    if os.path.lexists(base):
        ordered.append(base)
    return ordered


class SyslogSource:
    """Kernel lines in the syslog daemon's files, with rotated ``.N``/``.gz``/``.xz``/``.bz2``
    siblings.

    Only one family is read, the first that exists of ``kern.log`` (Debian/Ubuntu: every
    kernel line), ``messages`` (Fedora/RHEL: every kernel line; on Debian it holds only
    the info..warn levels, so a report there would be cut) and ``syslog``. Reading two of
    them would find every report twice.
    """

    name = "syslog"
    BASES = ("kern.log", "messages", "syslog")

    def __init__(self, logdir: str = "/var/log") -> None:
        self.logdir = logdir

    def family(self) -> list[str]:
        """The files this source reads, oldest first."""
        for base in self.BASES:
            paths = rotated_family(os.path.join(self.logdir, base))
            if paths:
                return paths
        return []

    def exists(self) -> bool:
        """True when one of the syslog files exists."""
        return bool(self.family())

    def units(self, state: dict[str, Any]) -> Iterator[LogUnit]:
        """One unit per file of the family, oldest first."""
        paths = self.family()
        live = [p for p in paths if os.path.basename(p) in self.BASES]
        yield from file_units(self.name, paths, state, live=live)


class KdumpSource:
    """The kernel log kdump saved from a crashed kernel.

    Fedora/RHEL ``kdump`` writes ``/var/crash/<host>-<date>/vmcore-dmesg.txt``; Debian's
    ``kdump-tools`` writes ``/var/crash/<YYYYMMDDHHMM>/dmesg.<YYYYMMDDHHMM>``.
    """

    name = "kdump"

    def __init__(self, crashdir: str = "/var/crash") -> None:
        self.crashdir = crashdir

    def paths(self) -> list[str]:
        """The saved kernel logs, oldest directory first."""
        base = glob.escape(self.crashdir)
        found = glob.glob(os.path.join(base, "*", "vmcore-dmesg.txt"))
        found += glob.glob(os.path.join(base, "*", "dmesg.[0-9]*"))
        return sorted(found)

    def exists(self) -> bool:
        """True when kdump left a kernel log."""
        return bool(self.paths())

    def units(self, state: dict[str, Any]) -> Iterator[LogUnit]:
        """One unit per saved kernel log."""
        yield from file_units(self.name, self.paths(), state)


# ---------------------------------------------------------------- /dev/kmsg and dmesg


@dataclass(frozen=True)
class KmsgRecord:
    """One ``/dev/kmsg`` record (Documentation/ABI/testing/dev-kmsg)."""

    level: int
    facility: int
    seq: int
    ts_usec: int
    caller: str | None
    text: str


_KMSG_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")


def parse_kmsg_record(data: bytes) -> KmsgRecord | None:
    """Parse ``prefix;text`` (continuation `` KEY=value`` lines ignored); None if malformed.

    The kernel escapes non-printable bytes, including newlines inside a message, as
    ``\\xNN``; they are unescaped here, so ``text`` may hold several lines.
    """
    first = data.split(b"\n", 1)[0]
    head, sep, body = first.partition(b";")
    if not sep:
        return None
    fields = head.split(b",")
    if len(fields) < 4:
        return None
    try:
        prio, seq, ts = int(fields[0]), int(fields[1]), int(fields[2])
    except ValueError:
        return None
    caller = None
    for extra in fields[4:]:
        if extra.startswith(b"caller="):
            caller = extra[7:].decode("ascii", "replace")
    body = _KMSG_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), body)
    return KmsgRecord(level=prio & 7, facility=prio >> 3, seq=seq, ts_usec=ts, caller=caller,
                      text=body.decode("utf-8", "replace").replace("\x00", " "))


def kmsg_lines(rec: KmsgRecord) -> list[str]:
    """The record as ``dmesg --raw`` prints it: ``<L>[  sec.usec] text`` (``[  T123]``
    after the time when the record names its caller), one line per line.

    Records of every facility are kept, as ``dmesg`` shows them: userspace writes to
    ``/dev/kmsg`` (facility 1 and up) are part of the kernel log too.
    """
    ts = f"[{rec.ts_usec // 1000000:5d}.{rec.ts_usec % 1000000:06d}]"
    if rec.caller:  # as dmesg prints CONFIG_PRINTK_CALLER ids: keeps CPUs' output apart
        ts += f"[{rec.caller:>6}]"
    return [f"<{rec.level}>{ts} {line}" for line in rec.text.split("\n") if line]


def read_boot_id(path: str = "/proc/sys/kernel/random/boot_id") -> str:
    """This boot's id (empty when unreadable)."""
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip().replace("-", "")
    except OSError:
        return ""


class KmsgSource:
    """The kernel ring buffer: ``/dev/kmsg`` records after the stored sequence number.

    Falls back to ``dmesg --raw`` (timestamps as the cursor) when ``/dev/kmsg`` cannot be
    opened, e.g. in a container.
    """

    name = "kmsg"

    def __init__(self, path: str = "/dev/kmsg",
                 boot_id_path: str = "/proc/sys/kernel/random/boot_id",
                 dmesg: Sequence[str] = ("dmesg",)) -> None:
        self.path = path
        self.boot_id_path = boot_id_path
        self.dmesg = tuple(dmesg)

    def exists(self) -> bool:
        """True when /dev/kmsg or dmesg is there."""
        return os.path.exists(self.path) or shutil.which(self.dmesg[0]) is not None

    def units(self, state: dict[str, Any]) -> Iterator[LogUnit]:
        """One unit: the records not yet seen in this boot."""
        boot = read_boot_id(self.boot_id_path)
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            log.info("kmsg: %s: %s; using dmesg", self.path, _one_line(exc))
            yield self._dmesg_unit(state, boot)
            return
        last = state.get("seq") if state.get("boot_id") == boot else None
        last_seq = last if isinstance(last, int) else -1
        high = [last_seq]

        def lines() -> Iterator[str]:
            try:
                for rec in read_kmsg_records(fd):
                    if rec.seq <= last_seq:
                        continue
                    high[0] = max(high[0], rec.seq)
                    yield from kmsg_lines(rec)
            finally:
                os.close(fd)

        def finish() -> None:
            state.clear()
            state.update({"boot_id": boot, "seq": high[0]})

        yield LogUnit(self.name, self.path, lines(), finish)

    def _dmesg_unit(self, state: dict[str, Any], boot: str) -> LogUnit:
        res = run_command([*self.dmesg, "--raw"])
        if res.error or res.rc != 0:
            detail = res.error or decode_line(res.stderr.splitlines()[0] if res.stderr else b"")
            raise OopsError(f"dmesg failed: {detail or f'exit {res.rc}'}")
        last = state.get("ts") if state.get("boot_id") == boot else None
        last_ts = float(last) if isinstance(last, (int, float)) else -1.0
        high = [last_ts]
        stamp = re.compile(r"^<\d+>\[\s*(\d+\.\d+)\]")

        def lines() -> Iterator[str]:
            for line in split_text_lines(res.stdout):
                m = stamp.match(line)
                if m:
                    ts = float(m.group(1))
                    if ts <= last_ts:
                        continue
                    high[0] = max(high[0], ts)
                elif last_ts >= 0:
                    continue
                if line:
                    yield line

        def finish() -> None:
            state.clear()
            state.update({"boot_id": boot, "ts": high[0]})

        return LogUnit(self.name, "dmesg", lines(), finish)


def read_kmsg_records(fd: int) -> Iterator[KmsgRecord]:
    """Records readable now from a non-blocking ``/dev/kmsg`` descriptor, until EAGAIN."""
    while True:
        try:
            data = os.read(fd, KMSG_READ)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # records were overwritten before we read them
                continue
            raise
        if not data:
            return
        rec = parse_kmsg_record(data)
        if rec is not None:
            yield rec


# ---------------------------------------------------------------- journal


_BOOT_LINE = re.compile(r"^\s*(-?\d+)\s+([0-9a-f]{32})\b")
_CURSOR_LINE = re.compile(r"^-- cursor: (\S+)\s*$")


class JournalSource:
    """Kernel messages in the systemd journal, for this and previous boots.

    ``journalctl -k -b <boot id> -o short-precise``, per boot, resuming after the cursor
    stored for that boot (``--after-cursor``, ``--show-cursor``). ``extra_args`` select
    another journal (``--file``/``--directory``) for tests or offline analysis.
    """

    name = "journal"

    def __init__(self, journalctl: str = "journalctl", extra_args: Sequence[str] = (),
                 max_boots: int = 10) -> None:
        self.journalctl = journalctl
        self.extra_args = tuple(extra_args)
        self.max_boots = max_boots

    def boots(self) -> list[tuple[int, str]]:
        """``(index, boot id)`` of the boots in the journal, oldest first."""
        if shutil.which(self.journalctl) is None:
            return []
        res = run_command([self.journalctl, *self.extra_args, "--list-boots", "--no-pager"], 60)
        if res.error or res.rc != 0:
            return []
        boots = []
        for line in split_text_lines(res.stdout):
            m = _BOOT_LINE.match(line)
            if m:
                boots.append((int(m.group(1)), m.group(2)))
        return sorted(boots)

    def exists(self) -> bool:
        """True when journalctl works and the journal has at least one boot."""
        return bool(self.boots())

    def units(self, state: dict[str, Any]) -> Iterator[LogUnit]:
        """One unit per boot (the last ``max_boots``), oldest first."""
        cursors = state.get("boots") if isinstance(state.get("boots"), dict) else {}
        new_cursors: dict[str, str] = {}
        boots = self.boots()[-self.max_boots:]
        for _idx, boot in boots:
            argv = [self.journalctl, *self.extra_args, "-k", "-b", boot, "-o", "short-precise",
                    "--no-pager", "--quiet", "--show-cursor"]
            old = cursors.get(boot)
            if isinstance(old, str):
                argv += ["--after-cursor", old]
                new_cursors[boot] = old
            res = run_command(argv)
            if res.error or res.rc != 0:
                err = res.error or decode_line(res.stderr.strip().splitlines()[-1:][0]
                                               if res.stderr.strip() else b"")
                log.warning("journal: boot %s: skipped: %s", boot, err or f"exit {res.rc}")
                continue
            text = list(split_text_lines(res.stdout))
            cursor = None
            while text and (not text[-1] or _CURSOR_LINE.match(text[-1])):
                m = _CURSOR_LINE.match(text.pop())
                if m:
                    cursor = m.group(1)

            def finish(boot: str = boot, cursor: str | None = cursor) -> None:
                if cursor:
                    new_cursors[boot] = cursor
                state["boots"] = new_cursors

            yield LogUnit(self.name, f"journal boot {boot}", iter(text), finish)
        state["boots"] = new_cursors


# ---------------------------------------------------------------- pstore


_PSTORE_NAME = re.compile(r"^(?P<type>[a-z]+)-(?P<backend>.+)-(?P<id>\d+)(?P<z>\.enc\.z)?$")
_PSTORE_HEADER = re.compile(r"^(?P<reason>[A-Za-z]+)#(?P<count>\d+) Part(?P<part>\d+)$")


@dataclass(frozen=True)
class PstoreRecord:
    """One file of /sys/fs/pstore, decompressed."""

    name: str
    type: str
    backend: str
    id: int
    text: str


def inflate_pstore(data: bytes) -> bytes:
    """Decompress an ``.enc.z`` record: zlib-wrapped (pstore before 6.6, ``WINDOW_BITS``
    12) or raw deflate (the crypto API ``deflate`` and pstore since 6.6).

    Backends keep records in fixed-size buffers, so data after the stream is ignored.
    """
    for wbits in (zlib.MAX_WBITS | 32, -zlib.MAX_WBITS):
        d = zlib.decompressobj(wbits)
        try:
            out = d.decompress(data)
        except zlib.error:
            continue
        if out:
            return out
    raise OopsError("not a zlib or deflate stream")


def read_pstore_record(path: str) -> PstoreRecord | None:
    """The record at ``path``; None for names pstore does not produce."""
    name = os.path.basename(path)
    m = _PSTORE_NAME.match(name)
    if not m:
        return None
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        data = f.read(16 << 20)
    if m.group("z"):
        data = inflate_pstore(data)
    return PstoreRecord(name=name, type=m.group("type"), backend=m.group("backend"),
                        id=int(m.group("id")), text=data.decode("utf-8", "replace").replace("\x00", " "))


@dataclass(frozen=True)
class PstoreEvent:
    """One kernel dump reassembled from its parts (``Oops#1 Part1`` …)."""

    backend: str
    reason: str
    count: int
    parts: tuple[str, ...]  # record names, as stored
    text: str

    @property
    def origin(self) -> str:
        """Human-readable name, e.g. ``pstore dmesg-ramoops-0..2 (Oops#1, 3 parts)``."""
        return f"pstore {','.join(self.parts)} ({self.reason}#{self.count}, {len(self.parts)} parts)"


def assemble_dmesg(records: Sequence[PstoreRecord]) -> list[PstoreEvent]:
    """Group ``dmesg`` records into events and join their parts in log order.

    pstore_dump() (fs/pstore/platform.c) walks the log from its end backwards: ``Part1``
    holds the newest lines and is written first, with the lowest id; each part begins
    with the header ``<reason>#<count> Part<n>``. A new event starts at every ``Part1``
    or wherever the header's reason, count or part sequence breaks. Log order is
    therefore PartN … Part1.
    """
    events: list[PstoreEvent] = []
    current: list[tuple[int, PstoreRecord, str]] = []
    key: tuple[str, str, int] | None = None

    def flush() -> None:
        if not current:
            return
        ordered = sorted(current, key=lambda c: -c[0])
        body = "".join(text if text.endswith("\n") else text + "\n" for _p, _r, text in ordered)
        head = current[0]
        events.append(PstoreEvent(backend=head[1].backend, reason=key[1] if key else "Unknown",
                                  count=key[2] if key else 0,
                                  parts=tuple(r.name for _p, r, _t in ordered), text=body))
        current.clear()

    by_backend = sorted((r for r in records if r.type == "dmesg"), key=lambda r: (r.backend, r.id))
    for rec in by_backend:
        first, _nl, rest = rec.text.partition("\n")
        m = _PSTORE_HEADER.match(first.strip())
        if m is None:  # no header: a record of its own
            flush()
            key = None
            current.append((1, rec, rec.text))
            flush()
            continue
        part = int(m.group("part"))
        rkey = (rec.backend, m.group("reason"), int(m.group("count")))
        if not current or part == 1 or rkey != key or part != current[-1][0] + 1:
            flush()
        key = rkey
        current.append((part, rec, rest))
    flush()
    return events


class PstoreSource:
    """Records the previous kernel left in pstore (``/sys/fs/pstore``): ``dmesg-*`` dumps
    (reassembled from their parts, ``.enc.z`` inflated) and ``console-*`` logs.

    Records stay until someone deletes them (systemd-pstore moves them away), so the
    cursor is the set of content hashes already scanned.
    """

    name = "pstore"

    def __init__(self, root: str = "/sys/fs/pstore") -> None:
        self.root = root

    def _paths(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except OSError:
            return []
        return sorted(os.path.join(self.root, n) for n in names if _PSTORE_NAME.match(n))

    def exists(self) -> bool:
        """True when pstore holds a dmesg or console record."""
        return any(os.path.basename(p).startswith(("dmesg-", "console-")) for p in self._paths())

    def units(self, state: dict[str, Any]) -> Iterator[LogUnit]:
        """One unit per dump event and per console record not seen before."""
        import hashlib

        seen_old = state.get("seen") if isinstance(state.get("seen"), list) else []
        seen = list(seen_old)
        records: list[PstoreRecord] = []
        for path in self._paths():
            try:
                rec = read_pstore_record(path)
            except _READ_ERRORS as exc:
                log.warning("pstore: %s: skipped: %s", path, _one_line(exc))
                continue
            if rec is not None:
                records.append(rec)
        texts: list[tuple[str, str]] = [(e.origin, e.text) for e in assemble_dmesg(records)]
        texts += [(f"pstore {r.name}", r.text) for r in records if r.type == "console"]
        for origin, text in texts:
            digest = hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()
            if digest in seen_old:
                continue

            def finish(digest: str = digest) -> None:
                if digest not in seen:
                    seen.append(digest)
                state["seen"] = seen[-1000:]

            yield LogUnit(self.name, origin, iter(text.split("\n")), finish)


# ---------------------------------------------------------------- selection


def default_sources() -> list[Any]:
    """Every source, reading the real host."""
    return [KmsgSource(), JournalSource(), SyslogSource(), PstoreSource(), KdumpSource()]


def make_source(spec: str) -> Any:
    """Source for a ``--source`` value: a source name, or a path to a log file.

    Raises ``ValueError`` for an unknown name that is not an existing file.
    """
    factories: dict[str, Callable[[], Any]] = {
        "kmsg": KmsgSource, "journal": JournalSource, "syslog": SyslogSource,
        "pstore": PstoreSource, "kdump": KdumpSource,
    }
    if spec in factories:
        return factories[spec]()
    if os.path.isdir(spec):
        raise ValueError(f"--source {spec}: is a directory, not a log file")
    if os.path.exists(spec):
        return FileSource(spec)
    raise ValueError(f"--source {spec}: not one of {', '.join(SOURCE_NAMES)} and no such file")


__all__ = [
    "SOURCE_NAMES", "LogUnit", "CommandResult", "run_command", "LogFile", "file_units", "FileSource",
    "rotated_family", "SyslogSource", "KdumpSource", "KmsgRecord", "parse_kmsg_record",
    "kmsg_lines", "read_boot_id", "KmsgSource", "read_kmsg_records", "JournalSource",
    "PstoreRecord", "inflate_pstore", "read_pstore_record", "PstoreEvent", "assemble_dmesg",
    "PstoreSource", "default_sources", "make_source",
]
