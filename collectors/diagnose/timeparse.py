"""``--since TIME`` (pure): ISO date/time, ``@UNIX``, or relative ``-90m``/``-2h``/``-3d``/``-1w``."""

from __future__ import annotations

import re
import time
from datetime import datetime

_REL = re.compile(r"^-?(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str | None, now: float | None = None, default: str = "-7d") -> float:
    """Unix time for *text*; raises ValueError with a one-line message for anything else."""
    now = time.time() if now is None else now
    value = (text or default).strip()
    if value.startswith("@"):
        try:
            return float(value[1:])
        except ValueError:
            raise ValueError(f"--since {value}: not a Unix time") from None
    m = _REL.match(value)
    if m:
        return now - float(m.group(1)) * _UNIT[m.group(2)]
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--since {value}: expected an ISO date/time, @UNIX or -2h/-3d") from None
    return dt.timestamp()
