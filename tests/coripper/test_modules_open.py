"""Module files named by a (possibly hostile) core are opened only when they are regular files."""

import os
import time
from pathlib import Path

import pytest

from coripper.modules import open_regular


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
