"""Issue 15 §4: symlinks in a container's tree resolve inside the tree, never on the host.

A program crashed chrooted into a tree (its ``NT_FILE`` names ``/opt/crasher`` and the tree's
libc). Then the tree's files are moved and linked the way a container root can: the program is
an absolute symlink to a path that exists on the host too (holding another build of the
program there), libc a relative symlink that climbs past the tree's root with ``..`` to a host
FIFO. Resolved inside the tree, both lead to the real files: the frames are named, no module
is "mismatch" or "missing", and the host's files are never read (the FIFO never has a reader).
Checked through the API (a host path and a RootFS) and through ``crashkit backtrace``, with
``--rootdir`` and with a problem directory's ``container_rootfs`` element.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from testlib import PROGRAMS_SRC, python_exe
from coripper.unwinder import inline, modules
from coripper.unwinder.backtrace import CoreBacktrace, core_backtrace
from test_unwinder_module_fifo_swap import (  # noqa: F401 - container_crash is a fixture
    CRASH_FRAMES, container_crash, fifo_has_reader, fresh_tree, libc_path)


@pytest.fixture
def linked_tree(container_crash, tmp_path: Path) -> tuple[Path, Path, Path]:  # type: ignore[no-untyped-def]  # noqa: F811
    """(tree, core, host FIFO): the tree rearranged with escaping links (module docstring)."""
    tree, core = fresh_tree(container_crash, tmp_path / "tree")
    host = tmp_path / "host"
    host.mkdir()
    # /opt/crasher -> <host>/crasher (absolute): on the host that path is another build
    subprocess.run(["gcc", "-O0", "-pthread", "-o", str(host / "crasher"),
                    str(PROGRAMS_SRC / "crasher.c")], check=True)
    moved = tree / str(host / "crasher").lstrip("/")
    moved.parent.mkdir(parents=True)
    os.rename(tree / "opt/crasher", moved)
    (tree / "opt/crasher").symlink_to(host / "crasher")
    # libc -> ../../../(...)/<host>/libc.so.6: on the host a FIFO, in the tree the real libc
    libc = tree / libc_path(container_crash).lstrip("/")
    os.mkfifo(host / "libc.so.6")
    real_libc = tree / str(host / "libc.so.6").lstrip("/")
    os.rename(libc, real_libc)
    libc.symlink_to("../" * 16 + str(host / "libc.so.6").lstrip("/"))
    return tree, core, host / "libc.so.6"


def _assert_resolved_inside(bt: CoreBacktrace) -> None:
    names = [f.function_name for f in bt.threads[0].frames]
    assert names[:4] == CRASH_FRAMES, bt.warnings
    assert "__libc_start_main" in names
    assert not any("mismatch" in w or "missing" in w for w in bt.warnings), bt.warnings


def test_api_with_a_host_path_rootdir(linked_tree: tuple[Path, Path, Path]) -> None:
    tree, core, fifo = linked_tree
    modules.clear_cache()
    inline.clear_cache()
    _assert_resolved_inside(core_backtrace(core, rootdir=str(tree)))
    assert not fifo_has_reader(fifo)


def test_api_with_a_rootfs(linked_tree: tuple[Path, Path, Path]) -> None:
    from coripper.unwinder.rootfs import RootFS
    tree, core, fifo = linked_tree
    modules.clear_cache()
    inline.clear_cache()
    with RootFS.open(str(tree)) as root:
        _assert_resolved_inside(core_backtrace(core, rootdir=root))
    assert not fifo_has_reader(fifo)


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    # not from the work tree's directory: the installed packages (or PYTHONPATH) are used
    return subprocess.run([python_exe(), "-m", "collectors.cli", "backtrace", *args],
                          capture_output=True, text=True, timeout=120, check=False, cwd="/")


def _cli(*args: str) -> dict[str, object]:
    res = _run_cli("--json", *args)
    assert res.returncode == 0, res.stderr
    assert "mismatch" not in res.stderr and "missing" not in res.stderr, res.stderr
    doc: dict[str, object] = json.loads(res.stdout)
    return doc


def _cli_names(doc: dict[str, object]) -> list[str | None]:
    bt = CoreBacktrace.from_json(json.dumps(doc["core_backtrace"]))
    return [f.function_name for f in bt.threads[0].frames]


def test_cli_rootdir(linked_tree: tuple[Path, Path, Path]) -> None:
    tree, core, fifo = linked_tree
    names = _cli_names(_cli("--rootdir", str(tree), str(core)))
    assert names[:4] == CRASH_FRAMES and "__libc_start_main" in names
    assert not fifo_has_reader(fifo)


def test_cli_problem_directory_container_rootfs(linked_tree: tuple[Path, Path, Path],
                                                tmp_path: Path) -> None:
    tree, core, fifo = linked_tree
    d = tmp_path / "ccpp-2026-01-01-00:00:00-1"
    d.mkdir()
    shutil.copy(core, d / "coredump")
    (d / "executable").write_text("/opt/crasher")
    (d / "container_rootfs").write_text(str(tree))
    doc = _cli(str(d))
    assert doc["crash_function"] == "crash_write_null"
    names = _cli_names(doc)
    assert names[:4] == CRASH_FRAMES and "__libc_start_main" in names
    assert not fifo_has_reader(fifo)


def test_cli_refuses_a_container_rootfs_behind_a_symlink(linked_tree: tuple[Path, Path, Path],
                                                         tmp_path: Path) -> None:
    """The root itself is opened following no symlink: one on the way is an error, not a
    lookup on wherever it points."""
    tree, core, _fifo = linked_tree
    (tmp_path / "via-link").symlink_to(tree)
    d = tmp_path / "dir"
    d.mkdir()
    shutil.copy(core, d / "coredump")
    (d / "container_rootfs").write_text(str(tmp_path / "via-link"))
    res = _run_cli(str(d))
    assert res.returncode == 2
    assert "symbolic link" in res.stderr and len(res.stderr.strip().splitlines()) == 1
