"""``crashkit state`` output: the JSON object and the text table (control characters of
names escaped, so a hostile container name cannot move the cursor or forge a line)."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from typing import Any, TextIO

from collectors.state.attribution import Attribution
from collectors.state.model import Instance, TechResult, text


def state_json(results: Mapping[str, TechResult]) -> dict[str, Any]:
    """The ``--json`` object: technology → ``{status, instances, error}``."""
    return {tech: result.to_json() for tech, result in results.items()}


def dump_json(obj: Any, out: TextIO) -> None:
    # ensure_ascii: the output is 7-bit whatever the names hold, and valid for any consumer
    json.dump(obj, out, indent=2, ensure_ascii=True)
    out.write("\n")


def escape(value: str | None) -> str:
    """*value* safe for a terminal: C0/C1 controls, DEL and format characters (bidi
    overrides, zero-width) become ``\\xNN``/``\\uNNNN``; ``-`` for nothing."""
    if value is None or value == "":
        return "-"
    out = []
    for ch in text(value) or "":
        code = ord(ch)
        if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        elif ch == "\\":
            out.append("\\\\")
        elif unicodedata.category(ch) in ("Cf", "Zl", "Zp", "Cs"):
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "K", "M", "G", "T"):
        if size < 1024 or unit == "T":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{n}B"


def _cpu(inst: Instance) -> str:
    r = inst.resources
    used = f"{r.cpu_usage:.1f}s" if r.cpu_usage is not None else "-"
    limit = f"/{r.cpu_limit:g}cpu" if r.cpu_limit is not None else ""
    return used + limit


def _mem(inst: Instance) -> str:
    r = inst.resources
    limit = f"/{human_bytes(r.memory_limit)}" if r.memory_limit is not None else ""
    return human_bytes(r.memory_usage) + limit


def _row(inst: Instance) -> list[str]:
    disk = inst.disks[0] if inst.disks else None
    findings = inst.extra.get("findings") if isinstance(inst.extra, Mapping) else None
    name = inst.name or inst.id
    return [inst.tech, escape(name), escape(inst.state) + ("!" if findings else ""), _cpu(inst),
            _mem(inst), human_bytes(disk.usage) if disk else "-", escape(" ".join(inst.ips[:2]))]


def write_table(results: Mapping[str, TechResult], out: TextIO) -> None:
    """One line per instance, then one per technology that is absent or failed."""
    header = ["TECH", "NAME", "STATE", "CPU", "MEMORY", "DISK", "IP"]
    rows = [_row(i) for r in results.values() for i in r.instances]
    widths = [max(len(h), *(len(row[c]) for row in rows)) if rows else len(h)
              for c, h in enumerate(header)]
    widths = [min(w, 40) for w in widths]
    for row in [header, *rows]:
        cells = [cell if len(cell) <= widths[c] else cell[: widths[c] - 1] + "~"
                 for c, cell in enumerate(row)]
        out.write("  ".join(c.ljust(widths[i]) for i, c in enumerate(cells)).rstrip() + "\n")
    notes = [f"{tech}: {r.status}" + (f": {escape(r.error)}" if r.error else "")
             for tech, r in results.items() if r.status != "present"]
    present = [f"{tech}: {len(r.instances)}" for tech, r in results.items() if r.status == "present"]
    if present:
        out.write("\npresent: " + ", ".join(present) + "\n")
    for note in notes:
        out.write(note + "\n")


def write_attribution(att: Attribution, out: TextIO) -> None:
    """``crashkit state --pid`` text: one line."""
    if att.is_host:
        out.write(f"pid {att.pid}: host\n")
        return
    parts = [f"pid {att.pid}: {att.tech}", escape(att.name or att.id)]
    if att.uuid:
        parts.append(f"uuid {att.uuid}")
    if att.init_pid:
        parts.append(f"{'emulator' if att.vm else 'init'} pid {att.init_pid}")
    parts.append(f"({', '.join(att.signals)})")
    out.write(" ".join(parts) + "\n")
