"""Helpers of the event-engine tests: real problem directories in a temporary spool."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from reporter.dumpdir import DumpDir


def make_dir(spool: Path, name: str, elements: Mapping[str, str | bytes]) -> Path:
    """A committed problem directory *name* in *spool* with *elements* (time/type added)."""
    spool.mkdir(parents=True, exist_ok=True)
    dd = DumpDir.create(str(spool), name)
    try:
        dd.set_time(int(time.time()))
        values = {"type": "CCpp", **elements}
        for key, value in values.items():
            if isinstance(value, bytes):
                dd.save_bytes(key, value)
            else:
                dd.save_text(key, value)
        path = dd.commit()
    finally:
        dd.close()
    return Path(path)
