"""``crashkit check`` output: the JSON object and the text listing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

from collectors.checks.base import CheckRecord
from reporter.display import escape

MARK = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "skip": "skip", "error": "ERR "}


def checks_json(records: Sequence[CheckRecord]) -> dict[str, Any]:
    return {"checks": [r.to_json() for r in records]}


def dump_json(records: Sequence[CheckRecord], out: TextIO) -> None:
    json.dump(checks_json(records), out, indent=2, ensure_ascii=True)
    out.write("\n")


def write_text(records: Sequence[CheckRecord], out: TextIO, verbose: bool = False) -> None:
    """One line per check; evidence and remedy under the ones that did not pass."""
    phase = None
    for r in records:
        if r.phase != phase:
            phase = r.phase
            out.write(f"{phase}\n")
        out.write(f"  {MARK[r.status]}  {r.id:<28} {escape(r.result.summary)}\n")
        if r.status in ("warn", "fail", "error") or verbose:
            for e in r.result.evidence[:8 if not verbose else None]:
                out.write(f"          {escape(e)}\n")
            if r.result.remedy:
                out.write(f"          remedy: {escape(r.result.remedy)}\n")
    counts = {s: sum(1 for r in records if r.status == s) for s in MARK}
    out.write(", ".join(f"{n} {s}" for s, n in counts.items() if n) + "\n")
