"""An unwind imports nothing after :func:`coripper.unwinder.backtrace.preload_unwinder`.

Issue 15 §1: the post-processing child imports everything first, then empties ``sys.path``
and ``sys.meta_path`` before it touches a crash's files, so no module planted in a tree can
ever be imported. Here a subprocess preloads, replaces ``sys.meta_path`` with a finder that
records and refuses every import (builtin and frozen ones too) and empties ``sys.path``, then
unwinds real cores: C, C++ (demangled with c++filt), threads, abort, a container's core below
its tree (with openat2 and with the Python walk), a zstd-compressed core, a core without
threads (the error path). Nothing may be imported, and the results must equal an unwind in an
unrestricted interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from test_unwinder_module_fifo_swap import container_crash  # noqa: F401 - a fixture

CHILD = r"""
import json, sys
from coripper.unwinder import rootfs
from coripper.unwinder.backtrace import core_backtrace, preload_unwinder
forbid = sys.argv[1] == "forbid"
jobs = json.loads(sys.argv[2])
preload_unwinder()
attempts = []
class Forbid:
    def find_spec(self, name, path=None, target=None):
        attempts.append(name)
        raise ImportError(f"import of {name} after preload_unwinder()")
if forbid:
    sys.meta_path[:] = [Forbid()]
    sys.path[:] = []
    sys.path_importer_cache.clear()
from coripper.minimizer.compressed import seekable_core
results = []
for core, rootdir, walk in jobs:
    rootfs._openat2_missing = walk
    try:
        with seekable_core(core) as (stream, warnings):
            if rootdir == "/":
                bt = core_backtrace(stream)
            else:
                with rootfs.RootFS.open(rootdir) as root:
                    bt = core_backtrace(stream, rootdir=root, executable="/opt/crasher")
        results.append([bt.crash_function(), bt.duphash(), bt.to_json(), warnings + bt.warnings])
    except Exception as exc:
        results.append(f"{type(exc).__name__}: {exc}")
print(json.dumps({"attempts": attempts, "results": results}))
"""


def _run(mode: str, jobs: list[tuple[str, str, bool]]) -> dict[str, list[object]]:
    res = subprocess.run([sys.executable, "-c", CHILD, mode, json.dumps(jobs)], cwd="/",
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    out: dict[str, list[object]] = json.loads(res.stdout)
    return out


def test_unwinding_after_preload_imports_nothing(cores, container_crash,  # noqa: F811
                                                 tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    zstandard = pytest.importorskip("zstandard")
    segv = cores.standard("segv").core
    packed = tmp_path / "core.zst"
    packed.write_bytes(zstandard.ZstdCompressor().compress(segv.read_bytes()))
    empty = tmp_path / "no-threads.core"
    empty.write_bytes(segv.read_bytes()[:64] + bytes(4096))      # headers promise nothing
    tree, core, _placed = container_crash
    jobs = [(str(cores.standard(k).core), "/", False) for k in ("segv", "throw", "threads", "abort")]
    jobs += [(str(core), str(tree), False), (str(core), str(tree), True),
             (str(packed), "/", False), (str(empty), "/", False)]
    forbidden = _run("forbid", jobs)
    assert forbidden["attempts"] == []
    assert forbidden["results"] == _run("allow", jobs)["results"]
    named = [r[0] for r in forbidden["results"] if isinstance(r, list)]
    assert named[:2] == ["crash_write_null", "parse_config(int)"]
    assert isinstance(forbidden["results"][-1], str)                 # the error path ran too
