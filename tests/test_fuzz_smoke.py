"""Every atheris harness of fuzz/ still starts, builds its seed corpus and runs a few inputs.

Each harness runs as CI would run it by hand (``python3 fuzz/fuzz_X.py -runs=N``) in a
subprocess, with its work directory (seeds, corpus, artifacts) in a temporary directory.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HARNESSES = sorted(p.name for p in (REPO / "fuzz").glob("fuzz_*.py"))

pytestmark = pytest.mark.skipif(importlib.util.find_spec("atheris") is None,
                                reason="atheris is not installed (pip install atheris, in the test extra)")


def test_every_harness_is_listed_in_the_readme() -> None:
    readme = (REPO / "fuzz" / "README.md").read_text()
    assert len(HARNESSES) >= 8
    for name in HARNESSES:
        assert name in readme, name


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One work directory for all harnesses (built programs and cores are shared)."""
    return tmp_path_factory.mktemp("fuzz-work")


@pytest.mark.slow
@pytest.mark.parametrize("harness", HARNESSES)
def test_harness_runs(harness: str, work: Path) -> None:
    env = dict(os.environ, CRASHKIT_FUZZ_WORK=str(work))
    proc = subprocess.run([sys.executable, str(REPO / "fuzz" / harness), "-runs=300",
                           "-max_total_time=20", "-print_final_stats=1"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "Done " in out and "stat::number_of_executed_units" in out, out[-4000:]
    target = harness.removeprefix("fuzz_").removesuffix(".py")
    seeds = work / target / "seeds"
    assert seeds.is_dir() and any(seeds.iterdir()), f"{harness} built no seed corpus"
    assert not any((work / target / "artifacts").iterdir()), f"{harness} wrote a crash artifact"
