"""JSON with limits: size and nesting depth are checked before the parser sees the text.

Python's json module recurses once per nesting level, so a body of 10,000 ``[`` would end in
a RecursionError deep inside the parser; the depth is measured first with one regex scan
that skips string literals.
"""

from __future__ import annotations

import json
import re
from typing import Any

from reporter.server.errors import RejectedInput, TooLarge

_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def nesting_depth(data: bytes, limit: int) -> int:
    """Deepest ``[``/``{`` nesting of *data*, scanning no further than *limit* + 1 levels."""
    depth = deepest = 0
    for m in _TOKENS.finditer(data):
        tok = m.group()
        if tok in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif tok in (b"]", b"}"):
            depth -= 1
    return deepest


def loads_bounded(data: bytes, *, max_bytes: int, max_depth: int, what: str = "JSON") -> Any:
    """Parse *data* as UTF-8 JSON or raise :class:`RejectedInput` with a one-line reason."""
    if len(data) > max_bytes:
        raise TooLarge(f"{what} is {len(data)} bytes, over the {max_bytes}-byte limit")
    if nesting_depth(data, max_depth) > max_depth:
        raise RejectedInput(f"{what} is nested more than {max_depth} levels deep")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RejectedInput(f"{what} is not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise RejectedInput(f"{what} is not valid JSON: {exc}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
