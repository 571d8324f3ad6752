"""Module files named by a (possibly hostile) core are opened only when they are regular files,
once per unwind, and only through coripper.unwinder.rootfs: no plain open() of a path the core names."""

from __future__ import annotations

import builtins
import collections
import os
import time
from pathlib import Path
from typing import Any

import pytest

from coripper.unwinder import inline, modules, rootfs
from coripper.unwinder.backtrace import core_backtrace
from coripper.unwinder.regularfile import open_regular
from coripper.unwinder.rootfs import RootFS


def test_regular_file_opens(tmp_path: Path) -> None:
    path = tmp_path / "lib.so"
    path.write_bytes(b"\x7fELF")
    with open_regular(str(path)) as f:
        assert f.read() == b"\x7fELF"


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "libc.so.6"
    os.mkfifo(fifo)
    start = time.monotonic()
    with pytest.raises(OSError, match="not a regular file"):
        open_regular(str(fifo))
    assert time.monotonic() - start < 1.0


def test_device_and_directory_are_refused(tmp_path: Path) -> None:
    for path in ("/dev/zero", str(tmp_path)):
        with pytest.raises(OSError):
            open_regular(path)


def test_each_file_is_opened_once_and_only_through_rootfs(cores, monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:  # type: ignore[no-untyped-def]
    """A real unwind (9 threads, libc, DWARF of the program): every path below the root is
    resolved once; nothing calls open() on a path, and os.open only relative to procfs."""
    crash = cores.standard("threads")
    modules.clear_cache()
    inline.clear_cache()
    resolved: collections.Counter[str] = collections.Counter()
    plain: list[Any] = []
    real_resolve, real_os_open, real_open = RootFS._resolve, os.open, builtins.open

    def count(self: RootFS, path: str) -> int:
        resolved[path] += 1
        return real_resolve(self, path)

    def os_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if dir_fd is None:
            plain.append(path)
        return real_os_open(path, flags, mode, dir_fd=dir_fd)

    def py_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        plain.append(file)
        return real_open(file, *args, **kwargs)

    with open(crash.core, "rb") as core, RootFS.host() as root:
        monkeypatch.setattr(RootFS, "_resolve", count)
        monkeypatch.setattr(rootfs.os, "open", os_open)
        monkeypatch.setattr(builtins, "open", py_open)
        bt = core_backtrace(core, rootdir=root)
        monkeypatch.undo()
    assert bt.crash_function() == "crash_write_null"
    exe = str(crash.argv[0])
    assert resolved[exe] == 1 and any("libc.so" in p for p in resolved)
    assert max(resolved.values()) == 1, resolved
    assert plain == []
