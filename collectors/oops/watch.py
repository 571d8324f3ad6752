"""``crashkit oops watch``: follow the kernel log and collect reports as they appear.

Follows ``/dev/kmsg`` (default) or the journal (``journalctl -k -f -o json``), waiting in
``poll()`` so it sleeps while the kernel is quiet. Lines go to the parser as they come;
a report is written when the parser completes it (at its end marker or the next
unrelated line) or at the latest after ``QUIET`` seconds without new lines. Starts after
the cursor ``collect`` and earlier watches left, and moves it on as reports are written.
``--once`` exits after the first report, ``--timeout`` after that many seconds. The
kernel's refusals of core dumps among the lines are counted as crashes, as by ``collect``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import select
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from reporter.dumpdir import spool_path

from collectors.corehook import refusals
from collectors.corehook.refusals import RefusalTally
from collectors.oops import parse
from collectors.oops.collect import ReportHandler, SourceSummary, counts_refusals
from collectors.oops.cursor import CursorStore
from collectors.oops.kerneloops_dir import HostInfo, OopsDirWriter
from collectors.oops.sources import (
    KMSG_READ,
    decode_line,
    kmsg_lines,
    parse_kmsg_record,
    read_boot_id,
)
from collectors.oops.sources.base import UNKNOWN_ORIGIN
from collectors.oops.sources.journal import KERNEL_TRANSPORT

log = logging.getLogger(__name__)

QUIET = 2.0  # seconds without a new line after which a pending report is complete


class KmsgFollower:
    """Blocking-capable reader of ``/dev/kmsg`` that remembers each line's sequence number."""

    name = "kmsg"
    unauthenticated: str | None = None  # the kernel's ring buffer: trusted (sources/base.py)

    def __init__(self, path: str = "/dev/kmsg",
                 boot_id_path: str = "/proc/sys/kernel/random/boot_id") -> None:
        self.path = path
        self.boot = read_boot_id(boot_id_path)
        self.fd = -1
        self.after = -1

    def start(self, state: dict[str, Any]) -> None:
        """Open the device; records up to the stored sequence number are skipped."""
        self.fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        seq = state.get("seq") if state.get("boot_id") == self.boot else None
        self.after = seq if isinstance(seq, int) else -1

    def fileno(self) -> int:
        """Descriptor to poll."""
        return self.fd

    def read_available(self) -> list[tuple[str, Any]] | None:
        """``(line, position)`` pairs readable now (position = sequence number)."""
        out: list[tuple[str, Any]] = []
        while True:
            try:
                data = os.read(self.fd, KMSG_READ)
            except BlockingIOError:
                return out
            except BrokenPipeError:  # overwritten before we read them: go on
                continue
            if not data:
                return out
            rec = parse_kmsg_record(data)
            if rec is None or rec.seq <= self.after:
                continue
            self.after = rec.seq
            out.extend((line, rec.seq) for line in kmsg_lines(rec))

    def line_time(self, line: str, position: Any) -> float | None:
        """Wall-clock time of *line*'s entry; ``None``: its ``[sec.usec]`` stamp tells."""
        return None

    def state(self, position: Any) -> dict[str, Any]:
        """Cursor section meaning "read up to ``position``"."""
        return {"boot_id": self.boot, "seq": position}

    def merge(self, old: dict[str, Any], position: Any) -> dict[str, Any]:
        """The cursor section after ``position``, never moving a stored cursor backwards."""
        if old.get("boot_id") == self.boot and isinstance(old.get("seq"), int) and old["seq"] > position:
            return old
        return self.state(position)

    def close(self) -> None:
        """Close the device."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class JournalFollower:
    """``journalctl -k _TRANSPORT=kernel -f -o json`` from the stored cursor of this boot.

    Entries whose ``_TRANSPORT`` is not ``kernel`` are dropped here too. A journal named by
    ``extra_args`` is unauthenticated unless ``trusted``, as for
    :class:`~.sources.journal.JournalSource`.
    """

    name = "journal"

    def __init__(self, journalctl: str = "journalctl", extra_args: tuple[str, ...] = (),
                 boot_id_path: str = "/proc/sys/kernel/random/boot_id",
                 trusted: bool | None = None) -> None:
        self.journalctl = journalctl
        self.extra_args = extra_args
        trusted = not extra_args if trusted is None else trusted
        self.unauthenticated = None if trusted else (
            f"it was read from the journal given by {' '.join(extra_args)}, whose "
            f"{KERNEL_TRANSPORT} fields are whatever the writer of that journal put there")
        self.boot = read_boot_id(boot_id_path)
        self.proc: subprocess.Popen[bytes] | None = None
        self._buf = b""
        self._boots: dict[str, str] = {}

    def start(self, state: dict[str, Any]) -> None:
        """Start journalctl after this boot's stored cursor (or from the boot's start)."""
        boots = state.get("boots")
        if not isinstance(boots, dict):
            boots = {}
        self._boots = dict(boots)
        argv = [self.journalctl, *self.extra_args, "-k", KERNEL_TRANSPORT, "-b", "-f", "-o", "json",
                "--no-pager", "-n", "all"]
        cursor = boots.get(self.boot)
        if isinstance(cursor, str):
            argv += ["--after-cursor", cursor]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "SYSTEMD_PAGER": ""}
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env)
        os.set_blocking(self.proc.stdout.fileno(), False)  # type: ignore[union-attr]

    def fileno(self) -> int:
        """Descriptor to poll."""
        return self.proc.stdout.fileno()  # type: ignore[union-attr]

    def read_available(self) -> list[tuple[str, Any]] | None:
        """``(line, cursor)`` pairs readable now; None when journalctl exited."""
        try:
            data = os.read(self.fileno(), 1 << 16)
        except BlockingIOError:
            return []
        if not data:
            return None
        self._buf += data
        *entries, self._buf = self._buf.split(b"\n")
        out: list[tuple[str, Any]] = []
        for raw in entries:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(entry, dict) or entry.get("_TRANSPORT") != "kernel":
                continue
            msg = entry.get("MESSAGE")
            if isinstance(msg, list):  # binary message: an array of byte values
                msg = decode_line(bytes(b & 0xFF for b in msg if isinstance(b, int)))
            if not isinstance(msg, str):
                continue
            boot = entry.get("_BOOT_ID") or self.boot
            cursor = entry.get("__CURSOR")
            prio = entry.get("PRIORITY")
            prefix = f"<{prio}>" if isinstance(prio, str) and prio.isdigit() else ""
            stamp = entry.get("__REALTIME_TIMESTAMP")
            when = int(stamp) / 1e6 if isinstance(stamp, str) and stamp.isdigit() else None
            for line in msg.split("\n"):
                if line:
                    out.append((prefix + line, (boot, cursor, when)))
        return out

    def line_time(self, line: str, position: Any) -> float | None:
        """Wall-clock time of the entry *line* came from."""
        when = position[2]
        return when if isinstance(when, float) else None

    def merge(self, old: dict[str, Any], position: Any) -> dict[str, Any]:
        """The cursor section with this boot's cursor moved to ``position``."""
        boot, cursor = position[:2]
        boots = old.get("boots")
        if not isinstance(boots, dict):
            boots = {}
        new = dict(old)
        new["boots"] = {**boots, boot: cursor} if cursor else boots
        return new

    def close(self) -> None:
        """Stop journalctl."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


@dataclass
class _Batch:
    """Lines of one burst, with each line's position, and why the burst ended."""

    positions: list[Any]
    timed_out: bool = False
    eof: bool = False


def _burst(follower: Any, batch: _Batch, deadline: float | None, quiet: float,
           tally: RefusalTally | None = None) -> Iterator[str]:
    """Lines from ``follower`` until ``quiet`` seconds pass without one (or the deadline),
    each also shown to *tally* (the kernel's refusals of core dumps).

    Waits without a timeout for the first line, so an idle kernel log costs no CPU.
    """
    poller = select.poll()
    poller.register(follower.fileno(), select.POLLIN)
    boot = refusals.boot_realtime()
    got_any = False
    while True:
        wait: float | None = quiet if got_any else None
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                batch.timed_out = True
                return
            wait = left if wait is None else min(wait, left)
        events = poller.poll(None if wait is None else max(0, int(wait * 1000) + 1))
        if not events:
            if deadline is not None and time.monotonic() >= deadline:
                batch.timed_out = True
            return
        items = follower.read_available()
        if items is None:
            batch.eof = True
            return
        for line, position in items:
            batch.positions.append(position)
            got_any = True
            if tally is not None:
                tally.see(line, follower.line_time(line, position), boot)
            yield line


def follow(follower: Any, spool: str, *, once: bool = False, timeout: float | None = None,
           quiet: float = QUIET, host: HostInfo | None = None) -> SourceSummary:
    """Follow ``follower`` and write reports into ``spool`` until ``once``/``timeout``/EOF."""
    os.makedirs(spool, mode=0o755, exist_ok=True)
    store = CursorStore(spool)
    with store:
        follower.start(store.section(follower.name))
    writer = OopsDirWriter(spool, host or HostInfo.from_root())
    handler = ReportHandler(writer, store)
    summary = SourceSummary(follower.name)
    summary.logs.append(getattr(follower, "path", follower.name))
    deadline = None if timeout is None else time.monotonic() + timeout
    unauthenticated = getattr(follower, "unauthenticated", UNKNOWN_ORIGIN)
    tally = RefusalTally(spool, store) if counts_refusals(follower.name, unauthenticated) else None
    log.info("following %s (spool %s)", summary.logs[0], spool)
    try:
        while True:
            batch = _Batch([])
            for report in parse.scan_lines(_burst(follower, batch, deadline, quiet, tally)):
                last = batch.positions[min(report.end_line, len(batch.positions)) - 1] \
                    if batch.positions else None
                with store:
                    writer.refresh()
                    handler.handle(report, summary.logs[0], summary, unauthenticated=unauthenticated)
                    _count_refusals(tally, summary)
                    if last is not None:
                        _save_position(store, follower, last)
                if once and summary.reports:
                    return summary
            if batch.positions:
                with store:
                    _count_refusals(tally, summary)
                    _save_position(store, follower, batch.positions[-1])
            if batch.timed_out or batch.eof:
                return summary
    finally:
        follower.close()


def _count_refusals(tally: RefusalTally | None, summary: SourceSummary) -> None:
    """Count the refusals seen so far (the cursor store is locked and loaded)."""
    if tally is not None:
        summary.refusals += tally.flush()


def _save_position(store: CursorStore, follower: Any, position: Any) -> None:
    section = store.section(follower.name)
    new = follower.merge(section, position)
    section.clear()
    section.update(new)
    store.save()


def run_watch(args: argparse.Namespace) -> int:
    """Handler of ``crashkit oops watch``."""
    specs = list(getattr(args, "source", None) or [])
    if len(specs) > 1:
        raise ValueError("oops watch follows one source: --source kmsg or --source journal")
    spec = specs[0] if specs else ("kmsg" if os.path.exists("/dev/kmsg") else "journal")
    if spec == "kmsg":
        follower: Any = KmsgFollower()
    elif spec == "journal":
        follower = JournalFollower()
    else:
        raise ValueError(f"oops watch can follow kmsg or journal, not {spec!r}")
    timeout = getattr(args, "timeout", None)
    if timeout is not None and timeout < 0:
        raise ValueError("--timeout must not be negative")
    spool = spool_path(getattr(args, "spool", None))
    summary = follow(follower, spool, once=bool(getattr(args, "once", False)), timeout=timeout)
    if getattr(args, "json", False):
        from dataclasses import asdict

        print(json.dumps({"spool": spool, "sources": [asdict(summary)]}, indent=2))
    else:
        for d in summary.dirs:
            print(d)
    return 0
