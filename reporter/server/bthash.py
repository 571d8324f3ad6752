"""satyr's ``bthash`` of a stacktrace (``sr_stacktrace_get_bthash``), from uReport JSON.

satyr hashes a text made of the stacktrace's own fields, then every thread's frames, one
line per frame, with a blank line between threads, and takes the SHA-1 hex of it. Missing
strings print as ``<unknown>``. The per-type lines (from satyr's ``*_append_bthash_text``):

- core: ``Executable: E\\nSignal: N\\n\\n``; frame ``0xADDR, BUILDID+0xOFF, FILE, FINGERPRINT``
  (``<unknown>, `` instead of ``0xADDR, `` when the address is 0). satyr's own test vector:
  its ``core-01`` file hashes to ``6ebee2edb486ee24a3280c18b0db5353bbc22014``.
- python: ``Exception: NAME\\n\\n``; frame ``FILE, SPECIAL_FILE, LINE, FUNCTION, SPECIAL_FUNCTION, LINE_CONTENTS``
  (the specials as 0/1).
- kerneloops: ``Version: V\\nFlags: \\nModules: a, b\\n\\n`` (satyr's loop over the taint flags
  appends nothing, so the line is always empty); frame ``0xADDR, RELIABLE, FUNCTION, 0xOFF,
  0xLEN, MODULE, 0xFROM_ADDR, FROM_FUNCTION, 0xFROM_OFF, 0xFROM_LEN, FROM_MODULE``.

Other problem types get the SHA-1 of their canonical JSON (``sort_keys``): ours, not satyr's.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

UNKNOWN = "<unknown>"


def _s(value: Any) -> str:
    return value if isinstance(value, str) else UNKNOWN


def _n(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _b(value: Any) -> int:
    return 1 if value is True else 0


def core_bthash_text(problem: dict[str, Any]) -> str:
    """The text satyr hashes for a core stacktrace (``problem`` of a core uReport)."""
    out = [f"Executable: {_s(problem.get('executable'))}\nSignal: {_n(problem.get('signal'))}\n\n"]
    threads = [t for t in problem.get("stacktrace") or [] if isinstance(t, dict)]
    for i, thread in enumerate(threads):
        for f in thread.get("frames") or []:
            if not isinstance(f, dict):
                continue
            addr = _n(f.get("address"))
            out.append(f"0x{addr:x}, " if addr else f"{UNKNOWN}, ")
            out.append(f"{_s(f.get('build_id'))}+0x{_n(f.get('build_id_offset')):x}, "
                       f"{_s(f.get('file_name'))}, {_s(f.get('fingerprint'))}\n")
        if i < len(threads) - 1:
            out.append("\n")
    return "".join(out)


def python_bthash_text(problem: dict[str, Any]) -> str:
    """The text satyr hashes for a Python stacktrace."""
    out = [f"Exception: {_s(problem.get('exception_name'))}\n\n"]
    for f in problem.get("stacktrace") or []:
        if not isinstance(f, dict):
            continue
        special_file = "special_file" in f and "file_name" not in f
        special_func = "special_function" in f and "function_name" not in f
        file_name = f.get("special_file") if special_file else f.get("file_name")
        function = f.get("special_function") if special_func else f.get("function_name")
        out.append(f"{_s(file_name)}, {int(special_file)}, {_n(f.get('file_line'))}, {_s(function)}, "
                   f"{int(special_func)}, {_s(f.get('line_contents'))}\n")
    return "".join(out)


def koops_bthash_text(problem: dict[str, Any]) -> str:
    """The text satyr hashes for a kernel oops stacktrace."""
    modules = [m for m in problem.get("modules") or [] if isinstance(m, str)]
    out = [f"Version: {_s(problem.get('version'))}\nFlags: \nModules: {', '.join(modules)}\n\n"]
    for f in problem.get("frames") or []:
        if not isinstance(f, dict):
            continue
        out.append(
            f"0x{_n(f.get('address')):x}, {_b(f.get('reliable'))}, {_s(f.get('function_name'))}, "
            f"0x{_n(f.get('function_offset')):x}, 0x{_n(f.get('function_length')):x}, "
            f"{_s(f.get('module_name'))}, 0x{_n(f.get('from_address')):x}, "
            f"{_s(f.get('from_function_name'))}, 0x{_n(f.get('from_function_offset')):x}, "
            f"0x{_n(f.get('from_function_length')):x}, {_s(f.get('from_module_name'))}\n")
    return "".join(out)


TEXT_BY_TYPE = {"core": core_bthash_text, "python": python_bthash_text, "kerneloops": koops_bthash_text}


def bthash(problem: dict[str, Any]) -> str:
    """SHA-1 hex bthash of a uReport's ``problem`` object."""
    text_of = TEXT_BY_TYPE.get(str(problem.get("type")))
    if text_of is None:
        text = json.dumps(problem, sort_keys=True, separators=(",", ":"))
    else:
        text = text_of(problem)
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()
