"""Issue 15 §6: ``crashkit list`` and ``info`` read elements with a limit, on one descriptor.

A sparse 6 GiB element (``truncate -s 6G``) costs no disk but made ``list`` read it whole:
``MemoryError`` and the whole listing failed. ``info`` checked an element's size on one
descriptor and read it through another, so a file swapped in between was read unbounded.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from secenv import crashkit, problem_dir

from reporter import cli, elements
from reporter.dumpdir import DumpDir

SIX_GIB = 6 << 30


def sparse(path: Path, size: int) -> None:
    path.unlink(missing_ok=True)
    subprocess.run(["truncate", "-s", str(size), str(path)], check=True)


@pytest.mark.parametrize("element", ["reason", "executable", "reported_to", "type"])
def test_list_survives_a_sparse_6gib_element(tmp_path: Path, element: str) -> None:
    spool = tmp_path / "spool"
    problem_dir(spool, "a-fine", executable="/usr/bin/fine")
    big = problem_dir(spool, "b-big", executable="/usr/bin/big")
    sparse(big / element, SIX_GIB)

    res = crashkit("list", "--spool", str(spool), "--json")
    assert res.returncode == 0, res.stderr.decode()
    assert b"Traceback" not in res.stderr
    rows = {Path(r["directory"]).name: r for r in json.loads(res.stdout)}
    assert set(rows) == {"a-fine", "b-big"}
    assert rows["a-fine"]["reason"] == "a-fine killed by SIGSEGV"
    assert rows["a-fine"]["problems"] == {}
    row = rows["b-big"]
    assert row[element if element != "reported_to" else "reported"] in (None, False)
    assert str(SIX_GIB) in row["problems"][element]

    res = crashkit("list", "--spool", str(spool))
    assert res.returncode == 0, res.stderr.decode()
    out = res.stdout.decode()
    assert "a-fine" in out and "b-big" in out
    assert f"{element}: " in out and str(SIX_GIB) in out  # the problem is named


@pytest.mark.parametrize("element", ["reason", "type"])
def test_info_survives_a_sparse_6gib_element(tmp_path: Path, element: str) -> None:
    d = problem_dir(tmp_path / "spool", "big")
    sparse(d / element, SIX_GIB)
    res = crashkit("info", str(d), "--json")
    assert res.returncode == 0, res.stderr.decode()
    info = json.loads(res.stdout)
    assert info["binary"][element] == SIX_GIB
    assert info["elements"]["time"] == "1700000000"
    res = crashkit("info", str(d))
    assert res.returncode == 0, res.stderr.decode()
    assert f"{element}: <binary, {SIX_GIB} bytes>" in res.stdout.decode().splitlines()


def test_info_reads_the_element_it_measured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The element is replaced by a big file right after info looked at its size: what it
    shows is the file it measured, read through that same descriptor."""
    d = problem_dir(tmp_path / "spool", "swap", comment="small and harmless")
    big = tmp_path / "big"
    sparse(big, elements.MAX_TEXT_SIZE * 2)
    target = str(d / "comment")
    real_fstat = os.fstat
    swapped = []

    def fstat_then_swap(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        if not swapped and os.readlink(f"/proc/self/fd/{fd}") == target:
            os.rename(big, target)  # the attacker's move, just after the size check
            swapped.append(fd)
        return st

    monkeypatch.setattr(os, "fstat", fstat_then_swap)
    with DumpDir.open(str(d), readonly=True) as dd:
        info = cli.describe(dd)
    monkeypatch.undo()
    assert swapped, "the size of 'comment' was never looked at"
    assert info["elements"]["comment"] == "small and harmless"
    assert "comment" not in info["binary"]
