"""Issue 15 §6: one bad element no longer hides its directory.

A FIFO or a symbolic link planted under an element's name made ``crashkit list`` drop the
whole directory (with a warning on stderr at best). It is listed now, with the problem named
per element, in the table and in ``--json``; ``info`` names it too. Elements are real FIFOs,
symlinks and hard links.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from secenv import crashkit, problem_dir


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    spool = tmp_path / "spool"
    problem_dir(spool, "a-fine")
    d = problem_dir(spool, "b-fifo-reason")
    (d / "reason").unlink()
    os.mkfifo(d / "reason")
    d = problem_dir(spool, "c-symlink-executable")
    (d / "executable").symlink_to("/etc/shadow")
    d = problem_dir(spool, "d-fifo-count-link-reported")
    os.mkfifo(d / "count")
    (d / "reported_to").symlink_to(tmp_path / "nowhere")
    d = problem_dir(spool, "e-fifo-maps-hardlinked-reason")
    os.mkfifo(d / "maps")  # an element list itself does not read
    os.link(d / "reason", tmp_path / "second-link")
    return spool


EXPECTED = {
    "a-fine": {},
    "b-fifo-reason": {"reason": "FIFO"},
    "c-symlink-executable": {"executable": "symbolic link"},
    "d-fifo-count-link-reported": {"count": "FIFO", "reported_to": "symbolic link"},
    "e-fifo-maps-hardlinked-reason": {"maps": "FIFO", "reason": "2 hard links"},
}


def test_list_json_names_the_problem(spool: Path) -> None:
    res = crashkit("list", "--spool", str(spool), "--json", timeout=30)
    assert res.returncode == 0, res.stderr.decode()
    rows = {Path(r["directory"]).name: r for r in json.loads(res.stdout)}
    assert set(rows) == set(EXPECTED)
    for name, problems in EXPECTED.items():
        got = rows[name]["problems"]
        assert set(got) == set(problems), name
        for element, what in problems.items():
            assert what in got[element], (name, got)
    assert rows["b-fifo-reason"]["reason"] is None
    assert rows["c-symlink-executable"]["executable"] is None
    assert rows["c-symlink-executable"]["reason"] == "c-symlink-executable killed by SIGSEGV"
    assert rows["d-fifo-count-link-reported"]["count"] is None
    assert rows["d-fifo-count-link-reported"]["reported"] is False


def test_list_table_names_the_problem(spool: Path) -> None:
    res = crashkit("list", "--spool", str(spool), timeout=30)
    assert res.returncode == 0, res.stderr.decode()
    lines = res.stdout.decode().splitlines()
    for name, problems in EXPECTED.items():
        row = next(i for i, line in enumerate(lines) if line.endswith(name))
        notes = []
        for line in lines[row + 1:]:
            if not line.startswith(" "):
                break
            notes.append(line.strip())
        assert len(notes) == len(problems), (name, notes)
        for element, what in problems.items():
            assert any(n.startswith(f"problem: {element}: ") and what in n for n in notes), (name, notes)


def test_info_names_the_problem(spool: Path) -> None:
    d = spool / "d-fifo-count-link-reported"
    res = crashkit("info", str(d), "--json", timeout=30)
    assert res.returncode == 0, res.stderr.decode()
    info = json.loads(res.stdout)
    assert set(info["problems"]) == {"count", "reported_to"}
    assert "FIFO" in info["problems"]["count"]
    assert info["elements"]["reason"] == "d-fifo-count-link-reported killed by SIGSEGV"
    res = crashkit("info", str(d), timeout=30)
    lines = res.stdout.decode().splitlines()
    assert any(line.startswith("count: <not read: ") and "FIFO" in line for line in lines), lines
    assert any(line.startswith("reported_to: <not read: ") and "symbolic link" in line for line in lines)
