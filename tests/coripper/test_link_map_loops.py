"""Hostile ``link_map`` chains: a real core whose ``r_debug`` chain loops must neither hang the
unwinder nor the minimizer.

The chain is walked only for cores without ``NT_FILE`` (qemu-user's), where it is how the
unwinder finds the shared libraries; the minimizer never walks it (it synthesizes ``r_debug``
and the chain from ``NT_FILE``, docs/coripper.md). So the victim is the dynamically linked
aarch64 qemu core of test_aarch64_dynamic.py, patched in place:

* ``cycle``: the last node's ``l_next`` points back to the first. Every library is still met
  once, so the backtrace must equal the unpatched one.
* ``self``: the first node's ``l_next`` points to itself; the walk ends after one node.
* ``wild``: the first node's ``l_next`` points into unmapped memory.
Each must finish (subprocess time limit) with the minimizer exiting 0 in file and pipe mode.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from coripper.minimizer import elfcore
from coripper.unwinder.backtrace import _read_notes, core_backtrace
from coripper.unwinder.coremem import open_core_memory
from coripper.unwinder.modules import _executable_from_auxv
from coripper.unwinder.rootfs import FileCache, RootFS
from test_aarch64_dynamic import SYSROOT, dyn  # noqa: F401 - the module-scoped fixture

_NODE = struct.Struct("<QQQQQ")      # l_addr, l_name, l_ld, l_next, l_prev


def _chain(core: Path, exe: Path) -> tuple[list[int], list[elfcore.ProgramHeader]]:
    """Addresses of the ``link_map`` nodes reachable from the executable's ``DT_DEBUG``, and the
    core's program headers (to turn addresses into file offsets)."""
    with open(core, "rb") as f:
        header, phdrs, memory = open_core_memory(f)
        notes = elfcore.parse_core_notes(_read_notes(f, phdrs), header.e_machine)
        with FileCache(RootFS.host(), own_root=True) as files:
            exe_file = files.get(str(exe))
            assert exe_file is not None
            module = _executable_from_auxv(notes, memory, exe_file, files, 4096)
        assert module is not None
        mh = elfcore.parse_module_header(exe.read_bytes()[:4096])
        assert mh is not None and mh.dynamic_vaddr is not None
        dynamic = memory.read(module.bias + mh.dynamic_vaddr, mh.dynamic_size)
        assert dynamic is not None
        r_debug = dict(elfcore.parse_dynamic(dynamic))[elfcore.DT_DEBUG]
        node = memory.read_u64(r_debug + 8)
        nodes: list[int] = []
        while node and len(nodes) < 64:
            nodes.append(node)
            raw = memory.read(node, _NODE.size)
            if raw is None:         # "wild": the chain leaves the core
                break
            node = _NODE.unpack(raw)[3]
        memory.close()
    return nodes, [p for p in phdrs if p.p_type == elfcore.PT_LOAD]


def _file_offset(loads: list[elfcore.ProgramHeader], addr: int) -> int:
    for p in loads:
        if p.p_vaddr <= addr and addr + 8 <= p.p_vaddr + p.p_filesz:
            return p.p_offset + addr - p.p_vaddr
    raise AssertionError(f"{addr:#x} is not in the core's file")


def _patched(files: dict[str, Path], kind: str, tmp_path: Path) -> tuple[Path, int]:
    """A copy of the original qemu core with one ``l_next`` rewritten; returns it and how many
    nodes the original chain has."""
    nodes, loads = _chain(files["core"], files["exe"])
    assert len(nodes) >= 3          # the program, libc, ld.so at least
    where, value = {"cycle": (nodes[-1], nodes[0]), "self": (nodes[0], nodes[0]),
                    "wild": (nodes[0], 0x7ead_beef_0000)}[kind]
    data = bytearray(files["core"].read_bytes())
    off = _file_offset(loads, where + 24)
    data[off:off + 8] = struct.pack("<Q", value)
    out = tmp_path / f"{kind}.core"
    out.write_bytes(bytes(data))
    return out, len(nodes)


def _names(bt) -> list[list[str | None]]:  # type: ignore[no-untyped-def]
    return [[f.function_name for f in t.frames] for t in bt.threads]


@pytest.mark.parametrize("kind", ["cycle", "self", "wild"])
def test_looping_chain_finishes(dyn: dict[str, Path], kind: str,  # noqa: F811
                                tmp_path: Path) -> None:
    core, count = _patched(dyn, kind, tmp_path)
    nodes, _ = _chain(core, dyn["exe"])
    assert len(nodes) == (64 if kind != "wild" else 2)      # really loops (or leaves the core)
    run = subprocess.run([sys.executable, "-m", "collectors.cli", "backtrace", "--rootdir",
                          SYSROOT, "--executable", str(dyn["exe"]), "--json", str(core)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    bt = core_backtrace(str(core), rootdir=SYSROOT, executable=str(dyn["exe"]))
    original = core_backtrace(str(dyn["core"]), rootdir=SYSROOT, executable=str(dyn["exe"]))
    crash_frames = [f.function_name for f in bt.threads[0].frames]
    # the crash thread's frames are in the executable: named whatever the chain says
    assert crash_frames[:4] == [f.function_name for f in original.threads[0].frames][:4]
    if kind == "cycle":
        assert _names(bt) == _names(original)
    for mode in ("file", "pipe"):
        out = tmp_path / f"{kind}-{mode}.small"
        cli = [sys.executable, "-m", "coripper.cli"]
        if mode == "file":
            r = subprocess.run([*cli, str(core), "-o", str(out)], capture_output=True, timeout=60)
        else:
            with open(core, "rb") as f:
                r = subprocess.run([*cli, "-", "-o", str(out)], stdin=f, capture_output=True,
                                   timeout=60)
        assert r.returncode == 0, r.stderr
        assert out.read_bytes()[:4] == b"\x7fELF"
    assert count >= 3
