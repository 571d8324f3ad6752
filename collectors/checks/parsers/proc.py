"""Parsers of ``/proc`` and ``/sys`` text (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from collectors.oops.taint import TAINT_MEANINGS

#: kernel/panic.c ``taint_flags[]``: bit number -> letter (include/linux/panic.h TAINT_*).
TAINT_BITS = "PFSRMBUDAWCIOELKXTNJ"
#: Taint letters that say something went wrong (the others say what was loaded).
TAINT_TROUBLE = frozenset("SRMBUDAWL")


@dataclass(frozen=True)
class TaintFlag:
    bit: int
    letter: str
    meaning: str


def decode_taint(value: int) -> list[TaintFlag]:
    """The flags set in ``/proc/sys/kernel/tainted`` (unknown bits named by number)."""
    out = []
    for bit in range(max(value.bit_length(), 0)):
        if value >> bit & 1:
            letter = TAINT_BITS[bit] if bit < len(TAINT_BITS) else "?"
            meaning = TAINT_MEANINGS.get(letter, f"unknown taint bit {bit}")
            out.append(TaintFlag(bit, letter, meaning))
    return out


def parse_int(text: str | None) -> int | None:
    """The first integer of *text* (``None`` when there is none)."""
    if text is None:
        return None
    m = re.search(r"-?\d+", text)
    return int(m.group(0)) if m else None


def parse_kv(text: str, sep: str = ":") -> dict[str, str]:
    """``key: value`` lines (``/proc/meminfo``, ``/proc/vmstat`` with sep " ")."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, s, value = line.partition(sep)
        if s:
            out[key.strip()] = value.strip()
    return out


def meminfo_bytes(text: str) -> dict[str, int]:
    """``/proc/meminfo`` as bytes per field (``kB`` multiplied out)."""
    out: dict[str, int] = {}
    for key, value in parse_kv(text).items():
        parts = value.split()
        if parts and parts[0].isdigit():
            out[key] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    return out


def vmstat(text: str) -> dict[str, int]:
    """``/proc/vmstat`` counters."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


@dataclass(frozen=True)
class Pressure:
    """One line of ``/proc/pressure/<resource>``: ``some`` or ``full`` averages (percent)."""

    kind: str
    avg10: float
    avg60: float
    avg300: float
    total_us: int


def parse_pressure(text: str) -> dict[str, Pressure]:
    """``some avg10=0.00 avg60=0.00 avg300=0.00 total=0`` lines by kind."""
    out: dict[str, Pressure] = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        fields = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        try:
            out[parts[0]] = Pressure(parts[0], float(fields["avg10"]), float(fields["avg60"]),
                                     float(fields["avg300"]), int(fields.get("total", "0")))
        except (KeyError, ValueError):
            continue
    return out


def parse_loadavg(text: str) -> tuple[float, float, float] | None:
    parts = text.split()
    try:
        return float(parts[0]), float(parts[1]), float(parts[2])
    except (IndexError, ValueError):
        return None


def parse_file_nr(text: str) -> tuple[int, int, int] | None:
    """``/proc/sys/fs/file-nr``: (allocated, free, max)."""
    parts = text.split()
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


def boot_time(stat_text: str) -> int | None:
    """``btime`` of ``/proc/stat`` (Unix seconds)."""
    for line in stat_text.splitlines():
        if line.startswith("btime "):
            return parse_int(line[6:])
    return None


@dataclass(frozen=True)
class Limit:
    soft: int | None      # None = unlimited
    hard: int | None
    unit: str


def parse_limits(text: str) -> dict[str, Limit]:
    """``/proc/PID/limits``: ``Max core file size  0  unlimited  bytes`` by limit name."""
    out: dict[str, Limit] = {}
    for line in text.splitlines()[1:]:
        m = re.match(r"^(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)\s*(\S*)\s*$", line)
        if not m:
            continue

        def val(s: str) -> int | None:
            return None if s == "unlimited" else int(s) if s.isdigit() else None

        out[m.group(1)] = Limit(val(m.group(2)), val(m.group(3)), m.group(4))
    return out


@dataclass(frozen=True)
class Mount:
    """One ``/proc/self/mountinfo`` line."""

    mount_id: int
    mountpoint: str
    fstype: str
    source: str
    options: tuple[str, ...]        # per-mount options (ro/rw, nosuid, ...)
    super_options: tuple[str, ...]  # the filesystem's (errors=remount-ro, ...)

    @property
    def read_only(self) -> bool:
        return "ro" in self.options or "ro" in self.super_options


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """``/proc/self/mountinfo`` (proc(5)); malformed lines are skipped."""
    out = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        a, b = left.split(), right.split()
        if not sep or len(a) < 6 or len(b) < 2 or not a[0].isdigit():
            continue
        out.append(Mount(int(a[0]), _unescape(a[4]), b[0], _unescape(b[1]), tuple(a[5].split(",")),
                         tuple(b[2].split(",")) if len(b) > 2 else ()))
    return out


def parse_cmdline_params(cmdline: str) -> dict[str, str]:
    """Kernel command line ``name=value`` / bare ``name`` words (``--`` ends the kernel's part)."""
    out: dict[str, str] = {}
    for word in cmdline.split():
        if word == "--":
            break
        key, _, value = word.partition("=")
        out.setdefault(key, value)
    return out


def parse_coredump_filter(text: str) -> int | None:
    try:
        return int(text.strip(), 16)
    except ValueError:
        return None


#: core(5) coredump_filter bits.
COREDUMP_FILTER_BITS = {
    0: "anonymous private memory", 1: "anonymous shared memory", 2: "file-backed private memory",
    3: "file-backed shared memory", 4: "ELF headers", 5: "private huge pages",
    6: "shared huge pages", 7: "private DAX pages", 8: "shared DAX pages",
}
