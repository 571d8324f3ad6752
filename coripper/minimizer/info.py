"""``coripper --info``: a minimization report as text or JSON (pure formatting)."""

from __future__ import annotations

import json
import signal as _signal

from .stream import MinimizeReport

TYPE_CHECKING = False     # typing is not imported at run time (coripper/minimizer/lighttyping.py)
if TYPE_CHECKING:
    from typing import Any


def _signame(num: int) -> str:
    try:
        return _signal.Signals(num).name
    except ValueError:
        return str(num)


def report_to_dict(report: MinimizeReport) -> dict[str, Any]:
    """The stable JSON shape of ``--info --json`` (documented in docs/coripper.md)."""
    path, offset = report.crash_site()
    return {
        "machine": report.machine,
        "bytes_in": report.bytes_in,
        "bytes_out": report.bytes_out,
        "truncated": report.truncated,
        "hash": report.hash_algorithm,
        "digest": report.digest,
        "crash_site": {"module": path, "offset": offset},
        "threads": [{"tid": t.tid, "signal": t.signal, "pc": t.pc, "sp": t.sp}
                    for t in report.threads],
        "modules": [{"path": m.path, "start": m.start, "end": m.end, "build_id": m.build_id}
                    for m in report.modules],
        "kept": [{"start": a, "end": b, "size": b - a, "reason": r} for a, b, r in report.kept],
        "warnings": list(report.warnings),
    }


def format_json(report: MinimizeReport) -> str:
    return json.dumps(report_to_dict(report), indent=2)


def _ratio(bytes_in: int, bytes_out: int) -> str:
    """``  (1/7583)`` for a real reduction; ``  (x1.01)`` when the input was minimized already."""
    if not bytes_out:
        return ""
    if bytes_in >= 2 * bytes_out:
        return f"  (1/{bytes_in // bytes_out})"
    return f"  (x{bytes_out / max(bytes_in, 1):.2f})"


def format_text(report: MinimizeReport) -> str:
    """A human-readable summary."""
    lines = [f"machine: {report.machine}",
             f"bytes in: {report.bytes_in}  bytes out: {report.bytes_out}"
             + _ratio(report.bytes_in, report.bytes_out)
             + ("  TRUNCATED INPUT" if report.truncated else ""),
             f"threads ({len(report.threads)}, crash thread first):"]
    for t in report.threads:
        lines.append(f"  tid {t.tid:<8} signal {_signame(t.signal) if t.signal else '-':<8} "
                     f"pc {t.pc:#018x} sp {t.sp:#018x}")
    lines.append(f"modules ({len(report.modules)}):")
    for m in report.modules:
        lines.append(f"  {m.start:#x}-{m.end:#x} {m.build_id or '(no build-id)'} {m.path}")
    lines.append(f"kept ({len(report.kept)} segments):")
    for a, b, r in report.kept:
        lines.append(f"  {a:#x}-{b:#x} {b - a:>9} {r}")
    for w in report.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines) + "\n"
