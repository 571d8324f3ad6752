"""Accuracy on real-world-shaped kernel logs (tests/collectors/oops/data/realworld, see README.md).

``expected.txt`` there lists, per sample file and in input order, the kind, the syzkaller-style
title and the guilty function of every report, judged by hand from the report text. Run this file
as a script (``python tests/collectors/oops/test_realworld.py``) for the per-kind table: found /
expected, title and function agreement, false positives.
"""

from __future__ import annotations

import itertools
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from collectors.oops.parse import KernelReport, scan_text

DATA = Path(__file__).parent / "data" / "realworld"


@dataclass(frozen=True)
class Expected:
    file: str
    index: int  # position among the file's expected reports
    kind: str
    title: str
    function: str | None  # None: no function; "*": not judged
    truncated: bool


def load_expected() -> list[Expected]:
    """Parse expected.txt (FILE | KIND | TITLE | FUNCTION [| truncated])."""
    out: list[Expected] = []
    counts: dict[str, int] = defaultdict(int)
    for line in (DATA / "expected.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(" | ")]
        file, kind, title, func = parts[:4]
        out.append(Expected(file, counts[file], kind, title, None if func == "-" else func,
                            len(parts) > 4 and parts[4] == "truncated"))
        counts[file] += 1
    return out


def match(expected: list[Expected], reports: list[KernelReport]) -> tuple[list[KernelReport | None], list[KernelReport]]:
    """Pair each expected report (in order) with the next unused report of the same kind."""
    used: set[int] = set()
    paired: list[KernelReport | None] = []
    pos = 0
    for e in expected:
        hit = None
        for i in range(pos, len(reports)):
            if i not in used and reports[i].kind == e.kind:
                hit = i
                break
        if hit is None:
            paired.append(None)
            continue
        used.add(hit)
        pos = hit + 1
        paired.append(reports[hit])
    extra = [r for i, r in enumerate(reports) if i not in used]
    return paired, extra


def _scan(name: str) -> list[KernelReport]:
    return scan_text((DATA / name).read_text())


EXPECTED = load_expected()
FILES = sorted({e.file for e in EXPECTED})


def evaluate() -> dict[str, dict[str, int]]:
    """Per-kind counters: expected, found, title, function, false_positive."""
    stats: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for name in FILES + ["negatives.log"]:
        exp = [e for e in EXPECTED if e.file == name]
        paired, extra = match(exp, _scan(name))
        for e, r in zip(exp, paired, strict=True):
            s = stats[e.kind]
            s["expected"] += 1
            if r is None:
                continue
            s["found"] += 1
            s["title"] += r.title == e.title
            s["function"] += e.function == "*" or r.function == e.function
        for r in extra:
            stats[r.kind]["false_positive"] += 1
    return stats


@pytest.mark.parametrize("exp", EXPECTED, ids=lambda e: f"{e.file}#{e.index}")
def test_report(exp: Expected) -> None:
    reports = _scan(exp.file)
    paired, _ = match([e for e in EXPECTED if e.file == exp.file], reports)
    r = paired[exp.index]
    assert r is not None, f"{exp.kind} report not found; got {[x.title for x in reports]}"
    assert r.title == exp.title
    if exp.function != "*":
        assert r.function == exp.function
    assert r.truncated == exp.truncated
    assert 1 <= r.start_line <= r.end_line
    assert "crashkit real-world-shaped sample" not in r.text


@pytest.mark.parametrize("name", FILES)
def test_no_extra_reports(name: str) -> None:
    exp = [e for e in EXPECTED if e.file == name]
    _, extra = match(exp, _scan(name))
    assert not extra, [(r.kind, r.title, r.start_line) for r in extra]


def test_negative_lines_are_not_reports() -> None:
    text = (DATA / "negatives.log").read_text()
    assert len(text.splitlines()) >= 30
    assert scan_text(text) == []


def test_reports_do_not_swallow_each_other() -> None:
    """Back-to-back reports: each ends before the next one starts."""
    for name in FILES:
        reports = _scan(name)
        for a, b in itertools.pairwise(reports):
            assert a.end_line < b.start_line or a.text != b.text, (name, a.title, b.title)


def main() -> int:
    stats = evaluate()
    tot: dict[str, int] = defaultdict(int)
    print(f"{'kind':26} {'found':>9} {'title':>9} {'function':>9} {'FP':>3}")
    for kind in sorted(stats):
        s = stats[kind]
        for k, v in s.items():
            tot[k] += v
        print(f"{kind:26} {s['found']:>4}/{s['expected']:<4} {s['title']:>4}/{s['found']:<4} "
              f"{s['function']:>4}/{s['found']:<4} {s['false_positive']:>3}")
    print(f"{'TOTAL':26} {tot['found']:>4}/{tot['expected']:<4} {tot['title']:>4}/{tot['found']:<4} "
          f"{tot['function']:>4}/{tot['found']:<4} {tot['false_positive']:>3}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
