"""Which bucket a report belongs to: its kind, duplicate hash, title and the versions it names.

Bundles (problem directories):

- ``CCpp`` with ``core_backtrace``: satyr's thread duphash computed here with coripper
  (3 normalized crash-thread frames, empty component prefix, as our crash hook writes it);
  the client's ``duphash`` element is kept beside it for comparison.
- ``Kerneloops``: ABRT's oops hash from the ``duphash`` element (``uuid`` as a fallback),
  which must be 40 hex digits. Recomputing it would need the koops parser, which lives in
  ``collectors`` (that reporter must not import).
- ``Python*``: ABRT's rule, SHA-1 of the first line of ``backtrace``.
- anything else, or a hash that cannot be had: SHA-1 over type, component, executable and
  reason (documented in docs/server.md as a coarse fallback).

uReports: core frames give the same duphash as the bundle of the same crash; kerneloops
frames give ABRT's oops hash (up to 6 reliable function names); python frames give satyr's
generic duphash (``file:line`` of 3 frames); other types use the bthash.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from reporter.server.archive import ProblemArchive
from reporter.server.ureport import UReport

_HEX40 = re.compile(r"^[0-9a-f]{40}$")
KIND_BY_TYPE = {"ccpp": "core", "kerneloops": "kerneloops", "vmcore": "vmcore", "xorg": "xorg",
                "java": "java", "ruby": "ruby", "javascript": "js", "js": "js", "python": "python",
                "python3": "python"}
OOPS_HASH_FRAMES = 6


@dataclass(frozen=True)
class Classified:
    """The bucketing facts of one report."""

    kind: str
    duphash: str
    title: str
    crash_function: str | None = None
    bthash: str | None = None
    duphash_sent: str | None = None


def sha1(text: str) -> str:
    """Lowercase SHA-1 hex of UTF-8 text."""
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()


def kind_of_type(type_text: str) -> str:
    """Our bucket kind for a libreport ``type`` element."""
    t = type_text.strip().lower()
    if t.startswith("python"):
        return "python"
    return KIND_BY_TYPE.get(t, re.sub(r"[^a-z0-9_-]", "", t)[:32] or "other")


def _title(reason: str | None, function: str | None, fallback: str) -> str:
    base = (reason or "").strip().splitlines()[0] if (reason or "").strip() else fallback
    if function and function not in base:
        base = f"{base} in {function}"
    return base[:500]


def _core_duphash(doc: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """(duphash, crash function, bthash) of satyr core_backtrace / uReport core JSON."""
    from coripper.unwinder.backtrace import CoreBacktrace  # pyelftools; only the server pays for it
    from coripper.errors import CoripperError

    from reporter.server.bthash import bthash

    try:
        bt = CoreBacktrace.from_json(json.dumps(doc))
    except (CoripperError, ValueError, TypeError) as exc:
        raise ValueError(f"core_backtrace: {exc}") from None
    return bt.duphash(""), bt.crash_function(), bthash({**doc, "type": "core"})


def classify_bundle(problem: ProblemArchive) -> Classified:
    """Bucket facts of a validated problem-directory archive."""
    type_text = problem.text("type") or ""
    kind = kind_of_type(type_text)
    sent = (problem.text("duphash") or "").strip().lower() or None
    reason = problem.text("reason")
    function = (problem.text("crash_function") or "").strip() or None
    duphash = bthash_value = None
    if kind == "core" and problem.text("core_backtrace"):
        try:
            doc = json.loads(problem.text("core_backtrace") or "")
            if isinstance(doc, dict):
                duphash, function, bthash_value = _core_duphash(doc)
        except ValueError:
            duphash = None
    elif kind == "python" and (problem.text("backtrace") or "").strip():
        duphash = sha1((problem.text("backtrace") or "").strip().splitlines()[0])
    if duphash is None:
        for name in ("duphash", "uuid"):
            value = (problem.text(name) or "").strip().lower()
            if _HEX40.match(value):
                duphash = value
                break
    if duphash is None:
        duphash = sha1("\0".join([type_text.strip(), problem.text("component") or "",
                                  problem.text("executable") or "", (reason or "").strip()]))
    exe = problem.text("executable")
    fallback = f"{type_text.strip()} crash of {os.path.basename(exe)}" if exe else f"{type_text.strip()} problem"
    return Classified(kind, duphash, _title(reason, function, fallback), function, bthash_value,
                      sent if sent and len(sent) <= 64 else None)


def classify_ureport(report: UReport) -> Classified:
    """Bucket facts of a validated uReport."""
    problem = report.problem
    function: str | None = None
    if report.kind == "core":
        try:
            duphash, function, _ = _core_duphash(problem)
        except ValueError:
            duphash = report.bthash
    elif report.kind == "kerneloops":
        duphash = _oops_duphash(problem) or report.bthash
        function = _first_function(problem.get("frames") or [])
    elif report.kind == "python":
        frames = [f for f in problem.get("stacktrace") or [] if isinstance(f, dict)]
        text = "Thread\n" + "".join(
            f"{f.get('file_name') or f.get('special_file') or '??'}:{f.get('file_line', 0)}\n" for f in frames[:3])
        duphash = sha1((report.component or "") + text)
        function = next((str(f.get("function_name")) for f in frames if f.get("function_name")), None)
    else:
        duphash = report.bthash
    return Classified(report.kind, duphash, _title(report.reason, function, f"{report.kind} problem"),
                      function, report.bthash)


def _oops_duphash(problem: dict[str, Any]) -> str | None:
    """ABRT's oops hash from uReport koops frames (docs/formats/libreport.md §5.6)."""
    lines = []
    for f in problem.get("frames") or []:
        if not isinstance(f, dict) or f.get("reliable") is False:
            continue
        name = f.get("function_name")
        if isinstance(name, str) and name:
            lines.append(name + "\n")
        elif isinstance(f.get("address"), int) and f["address"]:
            lines.append(f"0x{f['address']:x}\n")
        else:
            continue
        if len(lines) == OOPS_HASH_FRAMES:
            break
    return sha1("".join(lines)) if lines else None


def _first_function(frames: list[Any]) -> str | None:
    for f in frames:
        if isinstance(f, dict) and f.get("reliable") is not False and isinstance(f.get("function_name"), str):
            return str(f["function_name"])
    return None
