"""x86-64 PLT stubs: named ``name@plt`` as gdb (BFD's synthetic symbols) names them, and
unwound like gdb unwinds them.

tests/programs/plt_stub.c calls through each kind of stub: lazy ``.plt`` entries (after PLT0),
``.plt.sec`` (IBT, ``-z ibtplt``), ``.plt.got`` (a function whose address is also in the GOT)
and an ``IRELATIVE`` stub of a local ifunc (``*ABS*+0x<resolver>@plt``). gdb stops the program
at every instruction of the PLT sections (breakpoints; gdb hides them from the core it writes)
and writes a core there with ``gcore``; gdb's frames on each core are the oracle, compared with
``assert_matches_gdb`` of tests/coripper/test_unwind.py. The stub addresses and names come from
``objdump -d`` (BFD), independently of our code.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_unwind import GDB_SCRIPT, assert_matches_gdb  # tests/coripper is on sys.path

from coripper.unwinder.backtrace import core_backtrace
from coripper.unwinder.modules import load_tables

pytestmark = pytest.mark.skipif(
    platform.machine() != "x86_64" or not all(shutil.which(t) for t in ("gdb", "objdump", "gcc")),
    reason="needs gdb, objdump, gcc on x86-64")

SOURCE = Path(__file__).resolve().parents[1] / "programs" / "plt_stub.c"
PLT_SECTIONS = (".plt", ".plt.sec", ".plt.got")
VARIANTS = {
    "lazy-pie": ["-fPIE", "-pie", "-fcf-protection=none"],
    "ibt-pie": ["-fPIE", "-pie", "-fcf-protection=full", "-Wl,-z,ibtplt"],
    "nopie": ["-fno-PIE", "-no-pie", "-fcf-protection=none"],
}
MAX_STOPS = 24


def objdump_plt(path: str | Path) -> tuple[dict[int, str], list[int]]:
    """BFD's view of the PLT sections: ({stub address: "name@plt"}, [instruction addresses])."""
    sections = subprocess.run(["readelf", "-SW", str(path)], capture_output=True, text=True,
                              check=True).stdout
    args = [a for s in PLT_SECTIONS if re.search(rf"\s{re.escape(s)}\s", sections)
            for a in ("-j", s)]
    out = subprocess.run(["objdump", "-d", *args, str(path)], capture_output=True, text=True,
                         check=True).stdout if args else ""
    stubs = {int(a, 16): n for a, n in re.findall(r"^([0-9a-f]+) <(.*@plt)>:$", out, re.M)}
    insns = [int(a, 16) for a in re.findall(r"^\s+([0-9a-f]+):\t", out, re.M)]
    return stubs, insns


def _ours(path: str | Path) -> dict[int, str]:
    with open(path, "rb") as f:
        table = load_tables(f, None).symbols
    return {addr: n for addr, names in table.aliases.items() for n in names if n.endswith("@plt")}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("plt")
    out = {}
    for name, flags in VARIANTS.items():
        exe = root / f"plt_stub-{name}"
        subprocess.run(["gcc", "-g", "-O1", *flags, "-o", str(exe), str(SOURCE)], check=True)
        out[name] = exe
    return out


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_plt_names_equal_bfd(built: dict[str, Path], variant: str) -> None:
    stubs, _insns = objdump_plt(built[variant])
    names = {re.sub(r"0x[0-9a-f]+", "ADDR", n) for n in stubs.values()}
    assert {"getpid@plt", "getppid@plt", "printf@plt", "*ABS*+ADDR@plt"} <= names
    assert _ours(built[variant]) == stubs


@pytest.mark.parametrize("path", ["/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/bin/python3.11",
                                  "/usr/bin/bash", "/usr/bin/gdb"])
def test_system_plt_names_equal_bfd(path: str) -> None:
    """Debian's own objects: libc (``*ABS*`` ifunc stubs, ``.plt.got``), big executables."""
    if not Path(path).is_file():
        pytest.skip(f"{path} is not installed")
    stubs, _insns = objdump_plt(path)
    assert stubs and _ours(path) == stubs


def _stop_in_every_plt_instruction(exe: Path, cores: Path) -> list[Path]:
    """Run ``exe`` under gdb with a breakpoint on every instruction of its PLT sections and
    write a core (gcore) at each stop, in order; return the cores."""
    dis = subprocess.run(["objdump", "-d", str(exe)], capture_output=True, text=True,
                         check=True).stdout
    main = int(re.search(r"^([0-9a-f]+) <main>:$", dis, re.M).group(1), 16)  # type: ignore[union-attr]
    _stubs, insns = objdump_plt(exe)
    cmds = ["set pagination off", "set confirm off", "break main", "run", "delete 1"]
    cmds += [f"break *((char *) main + {addr - main})" for addr in insns]
    for i in range(MAX_STOPS):
        cmds += ["continue", f"gcore {cores}/core.{i:02d}"]
    script = cores / "stops.gdb"
    script.write_text("\n".join(cmds) + "\n")
    subprocess.run(["gdb", "-batch", "-nx", "-x", str(script), str(exe)], capture_output=True,
                   text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
    return sorted(cores.glob("core.*"))


def _gdb_on_cores(exe: Path, cores: list[Path]) -> list[dict[int, list]]:  # type: ignore[type-arg]
    """gdb's frames (tests/coripper/data/gdb_frames.py) on each core, one gdb for all."""
    args = ["gdb", "-batch", "-nx", "-ex", "set backtrace past-main on", "-ex",
            "set backtrace past-entry on", str(exe)]
    for core in cores:
        args += ["-ex", f"core-file {core}", "-ex", "echo CRASHKIT-CORE\\n", "-x", str(GDB_SCRIPT)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False).stdout
    result: list[dict[int, list]] = []  # type: ignore[type-arg]
    for line in out.splitlines():
        if line == "CRASHKIT-CORE":
            result.append({})
        elif line.startswith("CRASHKIT-THREAD ") and result:
            doc = json.loads(line[len("CRASHKIT-THREAD "):])
            result[-1][doc["tid"]] = doc["frames"]
    assert len(result) == len(cores) and all(result), out[-2000:]
    return result


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_stopped_in_plt_stubs_matches_gdb(built: dict[str, Path], variant: str,
                                          tmp_path: Path) -> None:
    exe = built[variant]
    cores = _stop_in_every_plt_instruction(exe, tmp_path)
    assert len(cores) >= 8, "gdb stopped too rarely in the PLT"
    seen = set()
    for core, gdb in zip(cores, _gdb_on_cores(exe, cores), strict=True):
        bt = core_backtrace(core)
        assert assert_matches_gdb(bt, gdb) >= 4, core
        top = bt.threads[0].frames[0]
        name = top.function_name
        if name is not None and name.endswith("@plt"):
            seen.add(re.sub(r"0x[0-9a-f]+", "ADDR", name))
        # the caller: main, or crtstuff's destructor calling __cxa_finalize@plt at exit
        assert bt.threads[0].frames[1].function_name in ("main", "__do_global_dtors_aux")
    assert {"getpid@plt", "getppid@plt", "printf@plt", "*ABS*+ADDR@plt"} <= seen
