"""A container's rootfs that is unmounted between the hook and post-processing (the container
stopped when its crashing init died): the core is still unwound, from the core alone, as when
no rootfs was recorded; an explicit ``rootdir`` that is gone stays an error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors.corehook import hooklog, postprocess

CORES = Path(__file__).resolve().parents[2] / "programs" / "cores"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (privilege drop)")


@pytest.fixture
def core(tmp_path: Path) -> Path:
    if shutil.which("zstd") is None:
        pytest.skip("zstd (Debian's zstd) is not installed")
    out = tmp_path / "static-segv-threads.core"
    subprocess.run(["zstd", "-q", "-d", "-o", str(out), str(CORES / "static-segv-threads.core.zst")],
                   check=True)
    return out


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "hook.log"
    hooklog.setup(str(path), use_syslog=False)
    yield path
    hooklog.setup(None)


def _elements(core: Path, rootdir: Path, transient: bool) -> dict[str, str]:
    fd = os.open(core, os.O_RDONLY)
    try:
        return postprocess.compute_elements(fd, "/crasher", str(rootdir), 65534, 65534,
                                            transient_root=transient)
    finally:
        os.close(fd)


@needs_root
def test_a_container_rootfs_gone_meanwhile_unwinds_from_the_core(core: Path, tmp_path: Path,
                                                                  log: Path) -> None:
    gone = tmp_path / "overlay" / "merged"
    elements = _elements(core, gone, transient=True)
    threads = json.loads(elements["core_backtrace"])["stacktrace"]
    assert threads and threads[0]["frames"][0]["address"]
    assert f"container rootfs {gone} gone" in log.read_text()


@needs_root
def test_an_explicit_root_that_is_gone_is_an_error(core: Path, tmp_path: Path, log: Path) -> None:
    missing = tmp_path / "no-such-root"
    assert _elements(core, missing, transient=False) == {}
    assert f"root directory {missing} unusable" in log.read_text()
