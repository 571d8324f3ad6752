"""A Python traceback (``backtrace`` of a Python3 directory) the way satyr parses it.

satyr's ``sr_python_stacktrace_parse``: find ``Traceback (most recent call last):\\n`` (or,
for a SyntaxError in the executed file, ``invalid syntax (`` and the frame after it), read
``  File "F", line N, in FUNC`` frames with an optional 4-space source line, skip a ``^``
pointer line, then the exception name up to ``:`` or the end of line. Frames are stored
innermost first; ``<module>``-style names and ``<string>``-style files become
``special_function`` / ``special_file``. The reason names the last stored (outermost) frame,
as satyr does.
"""

from __future__ import annotations

import re
from typing import Any

HEADER = "Traceback (most recent call last):\n"
_FRAME = re.compile(r'  File "(?P<file>[^"]*)", line (?P<line>\d+), in (?P<func>[^\n]*)\n?')


class PythonTracebackError(ValueError):
    """No traceback satyr would accept."""


def _frame_json(file_name: str, line: int, function: str, contents: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if file_name.startswith("<") and file_name.endswith(">") and len(file_name) > 2:
        out["special_file"] = file_name[1:-1]
    else:
        out["file_name"] = file_name
    if line:
        out["file_line"] = line
    if function.startswith("<") and function.endswith(">") and len(function) > 2:
        out["special_function"] = function[1:-1]
    else:
        out["function_name"] = function
    if contents is not None:
        out["line_contents"] = contents
    return out


def parse(text: str) -> tuple[str, list[dict[str, Any]]]:
    """``(exception_name, frames innermost first)``."""
    at = text.find(HEADER)
    if at >= 0:
        pos = at + len(HEADER)
    else:
        at = text.find("invalid syntax (")
        if at < 0:
            raise PythonTracebackError("Traceback header not found.")
        pos = text.find('  File "', at)
        if pos < 0:
            raise PythonTracebackError("Frame with invalid line not found.")
    frames: list[dict[str, Any]] = []
    while True:
        m = _FRAME.match(text, pos)
        if m is None:
            break
        pos = m.end()
        contents = None
        if text.startswith("    ", pos):
            end = text.find("\n", pos + 4)
            end = len(text) if end < 0 else end
            contents = text[pos + 4:end]
            pos = min(end + 1, len(text))
        frames.insert(0, _frame_json(m.group("file"), int(m.group("line")), m.group("func"), contents))
    if not frames:
        raise PythonTracebackError("Frame header not found.")
    eol = text.find("\n", pos)
    line = text[pos:] if eol < 0 else text[pos:eol]
    if line.strip(" ^") == "" and eol >= 0:
        pos = eol + 1  # the "    ^" pointer under invalid code
    m = re.match(r"[^:\n]*", text[pos:])
    name = m.group(0) if m else ""
    if pos + len(name) >= len(text) or not name:
        raise PythonTracebackError("Unable to find the ':\\n' characters identifying the end of exception name.")
    return name, frames


def python_problem(backtrace: str) -> tuple[dict[str, Any], str]:
    """The python-specific problem keys and satyr's reason."""
    name, frames = parse(backtrace)
    outer = frames[-1]
    file_name = outer.get("file_name", outer.get("special_file", "<unknown>"))
    reason = f"{name} in {file_name}:{outer.get('file_line', 0)}"
    return {"exception_name": name, "stacktrace": frames}, reason
