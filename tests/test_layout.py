"""The test tree's own rules: helpers come from ``testlib``, never from ``conftest`` (a
sub-directory's conftest.py would shadow tests/conftest.py for the modules collected after it,
under pytest's prepend import mode), and test module names are unique."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPORT_CONFTEST = re.compile(r"^\s*(from conftest import|import conftest\b)", re.M)


def test_nothing_imports_conftest() -> None:
    offenders = [str(p.relative_to(ROOT)) for d in ("tests", "bench", "fuzz")
                 for p in (ROOT / d).rglob("*.py") if IMPORT_CONFTEST.search(p.read_text())]
    assert not offenders, f"import from testlib (or a local helper module) instead: {offenders}"


def test_module_names_are_unique() -> None:
    seen: dict[str, str] = {}
    clashes = []
    for p in (ROOT / "tests").rglob("*.py"):
        if p.name in ("conftest.py", "__init__.py"):
            continue
        if p.stem in seen:
            clashes.append(f"{seen[p.stem]} ~ {p.relative_to(ROOT)}")
        seen[p.stem] = str(p.relative_to(ROOT))
    assert not clashes, clashes
