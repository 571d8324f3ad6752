"""The previous boot's journal: how it ended and which services took longest to stop (pure).

Input lines are ``journalctl -o short-unix``: ``<unix.usec> <host> <ident>[<pid>]: <text>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_LINE = re.compile(r"^(\d+(?:\.\d+)?) (\S+) ([^\s\[:]+)(?:\[(\d+)\])?: ?(.*)$")


@dataclass(frozen=True)
class Entry:
    time: float
    ident: str
    pid: int | None
    text: str

    def show(self) -> str:
        who = f"{self.ident}[{self.pid}]" if self.pid is not None else self.ident
        return f"{self.time:.6f} {who}: {self.text}"


def parse_short_unix(lines: Iterable[str]) -> list[Entry]:
    """Entries of ``-o short-unix`` output; other lines (``-- No entries --``) are skipped."""
    out = []
    for line in lines:
        m = _LINE.match(line)
        if m:
            out.append(Entry(float(m.group(1)), m.group(3), int(m.group(4)) if m.group(4) else None,
                             m.group(5)))
    return out


# What systemd (PID 1), systemd-shutdown, journald and the kernel print on the way down.
_KERNEL_END = {"reboot: Power down": "poweroff", "reboot: Restarting system": "reboot",
               "reboot: System halted": "halt", "kexec_core: Starting new kernel": "kexec"}
_TARGET = re.compile(r"^Reached target (?:(\S+\.target) - )?(.+?)\.$")
_TARGET_METHOD = (("kexec", "kexec"), ("reboot", "reboot"), ("power", "poweroff"), ("halt", "halt"))
_CLEAN = re.compile(r"^(Shutting down\.|Journal stopped|Reached target (?:.*?Shutdown|Final Step|"
                    r".*Late Shutdown Services)|Syncing filesystems and block devices\.|"
                    r"Sending SIGTERM to remaining processes)")
_PANIC = re.compile(r"Kernel panic - not syncing")


def target_method(unit: str | None, description: str) -> str | None:
    """``reboot`` for ``reboot.target - System Reboot`` / ``Reboot`` (older systemd), etc."""
    text = f"{unit or ''} {description}".lower()
    return next((method for word, method in _TARGET_METHOD if word in text), None)


@dataclass(frozen=True)
class ShutdownEnd:
    """How the boot recorded in *entries* ended."""

    clean: bool
    method: str           # reboot | poweroff | halt | kexec | panic | unknown
    last: Entry | None
    evidence: tuple[str, ...]
    started: float | None  # first sign of the shutdown (systemd's first "Stopping")
    ended: float | None


def shutdown_end(entries: list[Entry]) -> ShutdownEnd:
    """Clean when systemd, systemd-shutdown or journald said the system was going down."""
    method = "unknown"
    marks: list[Entry] = []
    panic = None
    for e in entries:
        if _PANIC.search(e.text):
            panic = e
        if e.ident == "kernel" and e.text in _KERNEL_END:
            method = _KERNEL_END[e.text]
            marks.append(e)
        elif e.ident == "systemd" and (m := _TARGET.match(e.text)) and target_method(m.group(1), m.group(2)):
            method = target_method(m.group(1), m.group(2)) or method
            marks.append(e)
        elif e.ident in ("systemd", "systemd-shutdown", "systemd-journald") and _CLEAN.match(e.text):
            marks.append(e)
    last = entries[-1] if entries else None
    stops = [e.time for e in entries if e.ident == "systemd" and e.text.startswith("Stopping ")]
    evidence = [e.show() for e in marks[-4:]]
    if last is not None:
        evidence.append(f"last entry: {last.show()}")
    if panic is not None and (not marks or panic.time >= marks[-1].time):
        return ShutdownEnd(False, "panic", last, (panic.show(), *evidence), stops[0] if stops else None,
                           last.time if last else None)
    return ShutdownEnd(bool(marks), method if marks else "unknown", last, tuple(evidence),
                       stops[0] if stops else None, last.time if last else None)


@dataclass(frozen=True)
class UnitStop:
    unit: str
    seconds: float
    timed_out: bool


_STOPPING = re.compile(r"^Stopping (.+?)(?:\.\.\.|…)$")
_STOPPED = re.compile(r"^Stopped (.+?)\.$")
_TIMEOUT = re.compile(r"^(\S+): State '[\w-]+' timed out\. (?:Killing|Terminating|Aborting)")


def unit_stop_times(entries: list[Entry]) -> list[UnitStop]:
    """Stop durations of the units systemd stopped, longest first (from the paired
    ``Stopping X...`` / ``Stopped X.`` messages of PID 1)."""
    started: dict[str, float] = {}
    timed_out: set[str] = set()
    out: list[UnitStop] = []
    for e in entries:
        if e.ident != "systemd":
            continue
        if (m := _STOPPING.match(e.text)):
            started.setdefault(m.group(1), e.time)
        elif (m := _STOPPED.match(e.text)) and m.group(1) in started:
            name = m.group(1)
            unit = name.split(" - ", 1)[0]
            out.append(UnitStop(unit, max(e.time - started.pop(name), 0.0),
                                unit in timed_out or name in timed_out))
        elif (m := _TIMEOUT.match(e.text)):
            timed_out.add(m.group(1))
    return sorted(out, key=lambda u: -u.seconds)
