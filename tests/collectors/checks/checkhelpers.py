"""Recorded host data for the check tests: a root tree of /proc and /sys files, a real journal
file written by systemd-journal-remote, and wtmp files in glibc's struct utmp layout
(origins in data/README.md)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from collectors.checks.base import CheckRecord
from collectors.checks.host import Host, HostConfig
from collectors.checks.run import run_checks, select

DATA = Path(__file__).resolve().parent / "data"
JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
PREV_BOOT = "0123456789abcdef0123456789abcdef"
CUR_BOOT = "fedcba9876543210fedcba9876543210"
UTMP = "<h2xi32s4s32s256shhiii16s20s"


def make_root(base: Path, files: dict[str, str | bytes]) -> Path:
    """A recorded root: each host path in *files* written under *base*."""
    for host_path, content in files.items():
        path = base / host_path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return base


def export_entry(boot: str, usec: int, ident: str, pid: int | None, msg: str, i: int) -> str:
    transport = "kernel" if ident == "kernel" else "journal"
    lines = [f"__CURSOR=s=0;i={i}", f"__REALTIME_TIMESTAMP={usec}", f"__MONOTONIC_TIMESTAMP={i * 1000}",
             f"_BOOT_ID={boot}", f"_TRANSPORT={transport}", "PRIORITY=6", f"SYSLOG_IDENTIFIER={ident}",
             "_HOSTNAME=recorded"]
    if pid is not None:
        lines.append(f"_PID={pid}")
    lines.append(f"MESSAGE={msg}")
    return "\n".join(lines) + "\n"


def make_journal(path: Path, entries: list[tuple[str, float, str, int | None, str]]) -> Path:
    """A real journal file with ``(boot, seconds, ident, pid, message)`` entries."""
    if not Path(JOURNAL_REMOTE).exists() or shutil.which("journalctl") is None:
        pytest.skip("needs systemd-journal-remote and journalctl")
    base = int(time.time() * 1e6) - 86400 * 10**6
    export = "\n".join(export_entry(b, base + int(s * 1e6), ident, pid, m, i + 1)
                       for i, (b, s, ident, pid, m) in enumerate(entries)) + "\n"
    subprocess.run([JOURNAL_REMOTE, "-o", str(path), "-"], input=export.encode(), check=True,
                   capture_output=True)
    return path


def utmp_record(kind: int, pid: int, line: str, user: str, host: str, when: int) -> bytes:
    return struct.pack(UTMP, kind, pid, line.encode(), b"~~", user.encode(), host.encode(), 0, 0, 0,
                       when, 0, b"", b"")


def make_wtmp(path: Path, clean: bool, now: int | None = None) -> Path:
    """Two boots; the first ends with a shutdown record when *clean*."""
    now = now or int(time.time())
    recs = [utmp_record(2, 0, "~", "reboot", "6.1.0-18-amd64", now - 7200),
            utmp_record(1, 53, "~", "runlevel", "6.1.0-18-amd64", now - 7190),
            utmp_record(7, 900, "pts/0", "alice", "10.0.0.5", now - 7000)]
    if clean:
        recs.append(utmp_record(1, 0, "~~", "shutdown", "6.1.0-18-amd64", now - 3700))
    recs += [utmp_record(2, 0, "~", "reboot", "6.1.0-18-amd64", now - 3600),
             utmp_record(1, 53, "~", "runlevel", "6.1.0-18-amd64", now - 3590)]
    path.write_bytes(b"".join(recs))
    return path


def run(config: HostConfig, *ids: str) -> dict[str, CheckRecord]:
    """Run the checks *ids* on *config*; records by id."""
    return {r.id: r for r in run_checks(Host(config), select((), ids))}
