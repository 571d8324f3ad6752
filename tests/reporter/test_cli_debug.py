"""``crashkit gdb`` / ``dump`` / ``backtrace`` on real crashes: tests/programs/crasher.c crashed
through the kernel into our hook (tests/collectors/corehook/hookenv.py, which takes the
host-wide core_pattern lock), with minimized and full cores, stored plain and zstd-compressed,
on the host and in a chroot; gdb runs in batch mode and the crash thread's frames are checked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collectors" / "corehook"))

from testlib import Programs, require_core_pattern  # noqa: E402
from hookenv import HookEnv  # noqa: E402

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[2]
FRAMES = ["crash_write_null", "crash_level2", "crash_level1", "main"]
# name of the crasher copy -> hook settings it crashed under
VARIANTS = {"ck-min": {"keep": "minimized", "compress": "none"},
            "ck-minz": {"keep": "minimized", "compress": "zstd"},
            "ck-full": {"keep": "full", "compress": "none"},
            "ck-fullz": {"keep": "full", "compress": "zstd"},
            "ck-nocore": {"keep": "none", "compress": "none"}}


def need_gdb() -> str:
    gdb = shutil.which("gdb")
    if gdb is None:
        pytest.skip("needs gdb (Debian package gdb)")
    return gdb


@pytest.fixture(scope="module")
def hook(programs: Programs) -> Iterator[HookEnv]:
    """One spool with a crash of each variant, a crash of a program deleted since, and one
    in a chroot."""
    require_core_pattern()
    env = HookEnv()
    try:
        crasher = programs.crasher()
        for name, settings in VARIANTS.items():
            env.configure(**settings)
            exe = env.program(crasher, name)
            env.crash([str(exe), "segv", "-t", "3"])
        env.configure(keep="minimized", compress="zstd")
        gone = env.program(crasher, "ck-gone")
        env.crash([str(gone), "segv"])
        gone.unlink()
        root = env.base / "root"
        root.mkdir()
        shutil.copy(programs.crasher("static"), root / "ck-chroot")
        env.crash(["chroot", str(root), "/ck-chroot", "segv", "-t", "2"])
        yield env
    finally:
        env.cleanup()


def crashkit(hook: HookEnv, *args: str, env: dict[str, str] | None = None,
             stdout: int | None = None) -> subprocess.CompletedProcess[bytes]:
    full = {k: v for k, v in os.environ.items() if k not in ("CRASHKIT_SPOOL", "NO_COLOR")}
    full["CRASHKIT_SPOOL"] = str(hook.spool)
    full.update(env or {})
    kwargs: dict[str, object] = {"stdout": stdout} if stdout is not None else {"capture_output": True}
    if stdout is not None:
        kwargs["stderr"] = subprocess.PIPE
    return subprocess.run([sys.executable, "-m", "collectors.cli", *args], env=full, timeout=300,
                          cwd=REPO, check=False, **kwargs)  # type: ignore[call-overload]


def gdb_frames(out: str) -> list[str]:
    """Function names of gdb's last ``bt`` (``#0  0x... in f (...)`` or ``#0  f (...)`` lines;
    gdb also prints frame #0 alone when it loads the core)."""
    names: list[str] = []
    for line in out.splitlines():
        m = re.match(r"#(\d+)\s+(?:0x[0-9a-f]+ in )?(\S+) \(", line)
        if m:
            if m.group(1) == "0":
                names = []
            names.append(m.group(2))
    return names


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ck-min", "ck-minz", "ck-full", "ck-fullz"])
def test_gdb_shows_the_crash_thread(hook: HookEnv, name: str, tmp_path: Path) -> None:
    need_gdb()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    res = crashkit(hook, "gdb", name, "--", "-batch", "-nx", "-ex", "info threads", "-ex", "bt",
                   env={"TMPDIR": str(tmp)})
    out = res.stdout.decode(errors="replace")
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    assert gdb_frames(out)[:4] == FRAMES, out
    assert "Program terminated with signal SIGSEGV" in out
    assert len(re.findall(r"^\*? +\d+ +(?:Thread|LWP)", out, re.M)) == 4  # main + 3 threads
    assert list(tmp.iterdir()) == []  # the decompressed copy is gone
    stored = {p.name for p in _stored_dir(hook, name).iterdir()}
    assert ("coredump.zst" in stored) == name.endswith("z")  # the variant it claims to be


def test_gdb_in_a_chroot_sets_the_sysroot(hook: HookEnv) -> None:
    need_gdb()
    res = crashkit(hook, "debug", "ck-chroot", "--", "-batch", "-nx", "-ex", "show sysroot", "-ex", "bt")
    out = res.stdout.decode(errors="replace")
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    root = (hook.base / "root").resolve()
    assert f'The current system root is "{root}"' in out
    assert gdb_frames(out)[:4] == FRAMES, out


def test_gdb_gets_debug_dirs_and_the_user_arguments(hook: HookEnv, tmp_path: Path) -> None:
    """--debugger runs any program: a script that records its argv shows the command line."""
    script = tmp_path / "fake-gdb"
    record = tmp_path / "argv"
    script.write_text(f"#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done > {record}\nexit 3\n")
    script.chmod(0o755)
    res = crashkit(hook, "gdb", f"--debugger={script}", "ck-chroot", "--", "-batch", "-ex", "bt",
                   env={"TMPDIR": ""})
    assert res.returncode == 3  # the debugger's status
    argv = record.read_text().splitlines()
    root = str((hook.base / "root").resolve())
    assert argv == ["-iex", f"set sysroot {root}", "-iex",
                    f"set debug-file-directory {root}/usr/lib/debug:/usr/lib/debug",
                    "-batch", "-ex", "bt", f"{root}/ck-chroot", argv[-1]]
    # the chroot's crash was stored compressed: a private copy, removed after the debugger ran
    assert re.fullmatch(r"/var/tmp/crashkit-gdb-[^/]+/core", argv[-1]) and not os.path.exists(argv[-1])


@pytest.mark.parametrize("args, message", [
    (["ck-nocore"], "has no stored core"),
    (["ck-gone"], "not found (deleted or upgraded since the crash?)"),
    (["--debugger=/nonexistent/gdb", "ck-min"], "debugger '/nonexistent/gdb' not found"),
    (["nosuchprogram"], "no problem matches nosuchprogram"),
])
def test_gdb_missing_pieces_are_one_line(hook: HookEnv, args: list[str], message: str) -> None:
    res = crashkit(hook, "gdb", *args)
    err = res.stderr.decode()
    assert res.returncode == 1, err
    assert err.startswith("crashkit: error: ") and err.count("\n") == 1 and message in err


def test_gdb_missing_from_path(hook: HookEnv, tmp_path: Path) -> None:
    res = crashkit(hook, "gdb", "ck-min", env={"PATH": str(tmp_path)})
    assert res.returncode == 1
    assert res.stderr.decode() == ("crashkit: error: debugger 'gdb' not found (install gdb, or name one "
                                   "with --debugger=PATH)\n")


def _stored_dir(hook: HookEnv, name: str) -> Path:
    return next(d for d in hook.dirs() if (d / "executable").read_text().endswith("/" + name))


@pytest.mark.parametrize("name", ["ck-min", "ck-minz", "ck-fullz"])
def test_dump_writes_the_decompressed_core(hook: HookEnv, name: str, tmp_path: Path) -> None:
    out = tmp_path / "core"
    res = crashkit(hook, "dump", name, "-o", str(out))
    assert res.returncode == 0, res.stderr.decode()
    d = _stored_dir(hook, name)
    if (d / "coredump.zst").exists():
        expected = subprocess.run(["zstd", "-dc", str(d / "coredump.zst")], capture_output=True,
                                  check=True).stdout if shutil.which("zstd") else None
        if expected is None:
            import zstandard

            expected = zstandard.ZstdDecompressor().stream_reader(open(d / "coredump.zst", "rb")).read()
    else:
        expected = (d / "coredump").read_bytes()
    data = out.read_bytes()
    assert data[:4] == b"\x7fELF" and data == expected
    assert out.stat().st_mode & 0o777 == 0o600
    piped = crashkit(hook, "dump", name, stdout=subprocess.PIPE)
    assert piped.returncode == 0 and piped.stdout == expected
    if shutil.which("gdb"):  # what dump wrote is a core gdb reads, with the same frames
        exe = str(hook.bin / name)
        res = subprocess.run(["gdb", "-batch", "-nx", "-ex", "bt", exe, str(out)], capture_output=True,
                             text=True, timeout=120, check=False)
        assert gdb_frames(res.stdout)[:4] == FRAMES


def test_dump_refuses_a_terminal(hook: HookEnv) -> None:
    import pty

    master, slave = pty.openpty()
    try:
        res = crashkit(hook, "dump", "ck-min", stdout=slave)
    finally:
        os.close(slave)
        os.close(master)
    assert res.returncode == 1
    assert res.stderr.decode().startswith("crashkit: error: refusing to write a binary core to a terminal")


def test_dump_of_a_crash_without_core(hook: HookEnv, tmp_path: Path) -> None:
    res = crashkit(hook, "dump", "ck-nocore", "-o", str(tmp_path / "x"))
    assert res.returncode == 1 and "has no stored core" in res.stderr.decode()
    assert not (tmp_path / "x").exists()


def test_backtrace_takes_matches(hook: HookEnv) -> None:
    res = crashkit(hook, "backtrace", "ck-minz", "--json")
    assert res.returncode == 0, res.stderr.decode()
    doc = json.loads(res.stdout)
    assert doc["crash_function"] == "crash_write_null"
    d = _stored_dir(hook, "ck-minz")
    pid = (d / "global_pid").read_text()
    res = crashkit(hook, "backtrace", pid)
    assert res.returncode == 0, res.stderr.decode()
    assert "crash_write_null" in res.stdout.decode().split("\n\n")[0]
    res = crashkit(hook, "backtrace", "nosuchprogram")
    assert res.returncode == 1 and res.stderr.decode() == "crashkit: error: no problem matches nosuchprogram\n"


def test_list_shows_the_real_crashes(hook: HookEnv) -> None:
    res = crashkit(hook, "list", "--json", "sig=SEGV")
    rows = {Path(r["executable"]).name: r for r in json.loads(res.stdout)}
    assert set(rows) == {*VARIANTS, "ck-gone", "ck-chroot"}
    assert rows["ck-nocore"]["core"] is None and rows["ck-minz"]["core"] == "coredump.zst"
    assert rows["ck-full"]["core_size"] > rows["ck-min"]["core_size"] > 0
    assert all(r["uid"] == 0 and r["signal"] == 11 for r in rows.values())
