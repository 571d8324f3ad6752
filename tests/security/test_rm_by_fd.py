"""Issue 15 §6: ``crashkit rm`` removes the directory it opened, not whatever its path names
by the time it is done.

``rm`` opened the directory, waited for its lock, emptied it through the descriptor and then
called ``rmdir(path)``: a path that was redirected meanwhile (a parent swapped for a symlink,
the directory renamed and another put in its place) made it remove some other directory. Now
the last step is ``unlinkat(parent_fd, name, AT_REMOVEDIR)`` on the parent it opened first.
Both races are made deterministic with a live lock holder: ``rm`` has its descriptors and
polls the lock while the test moves things, then the holder exits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from secenv import CRASHKIT, problem_dir


def start_rm_blocked_by_lock(d: Path) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """``crashkit rm d`` waiting on a live lock holder, once it has *d* open."""
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    os.symlink(str(holder.pid), d / ".lock")
    rm = subprocess.Popen([str(CRASHKIT), "rm", str(d)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not has_open(rm.pid, d):
        assert rm.poll() is None, rm.communicate()
        assert time.monotonic() < deadline, "crashkit rm never opened the directory"
        time.sleep(0.02)
    return holder, rm


def has_open(pid: int, d: Path) -> bool:
    try:
        links = [os.readlink(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")]
    except FileNotFoundError:
        return False
    return str(d) in links


def release(holder: subprocess.Popen[bytes], rm: subprocess.Popen[bytes]) -> tuple[int, str]:
    holder.kill()
    holder.wait()  # reaped: /proc/PID is gone, the lock is stale and rm takes it over
    _, err = rm.communicate(timeout=30)
    return rm.returncode, err.decode()


def test_rm_ignores_a_parent_swapped_for_a_symlink(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    d = problem_dir(spool, "ccpp-1", maps="x" * 100)
    victim = tmp_path / "elsewhere" / "ccpp-1"  # an empty directory the path will name
    victim.mkdir(parents=True)
    holder, rm = start_rm_blocked_by_lock(d)
    try:
        spool.rename(tmp_path / "moved")
        spool.symlink_to(victim.parent)
    finally:
        rc, err = release(holder, rm)
    assert rc == 0, err
    assert victim.is_dir(), "rm removed a directory it never opened"
    assert not (tmp_path / "moved" / "ccpp-1").exists(), "the opened directory was left behind"


def test_rm_leaves_a_directory_planted_under_the_name(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    d = problem_dir(spool, "ccpp-1")
    holder, rm = start_rm_blocked_by_lock(d)
    try:
        d.rename(spool / "renamed")
        d.mkdir()  # same name, same parent, another directory
    finally:
        rc, err = release(holder, rm)
    assert d.is_dir(), "rm removed the directory planted under the name"
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "ccpp-1" in err
    assert (spool / "renamed" / "time").exists()  # moved away while open: nothing deleted
