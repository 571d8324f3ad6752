"""The hook's light pre-slot path (collectors/corehook/gate.py, issue 17): its reader of the
simple hook.toml agrees with tomllib or leaves the file to it, shed records round-trip, and
the path imports next to nothing."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
import pytest

from testlib import REPO

from collectors.corehook import gate
from collectors.corehook.config import HookConfig, render_config

SIMPLE = [
    "",
    '[hook]\nspool = "/var/spool/x"\nmax_full_hooks = 3\n',
    "[hook]\nspool = '/srv/crash'  # a comment\n",
    '[report]\npost_create = true\n[hook]\nmax_full_hooks = 0\n',
    '[hook]\nsignals = [\n    4,\n    11,\n]\nignored_paths = ["/opt/[ab]*", "x#y"]\nmax_full_hooks = 12\n',
    '[other]\nspool = "/not/this/one"\n',
    render_config(HookConfig(spool="/var/spool/rendered", max_full_hooks=5, ignored_paths=("/a", "/b"))),
]


@pytest.mark.parametrize("text", SIMPLE)
def test_simple_files_read_as_tomllib_reads_them(text: str) -> None:
    section = tomllib.loads(text).get("hook", {})
    expected = (section.get("spool", gate.DEFAULT_SPOOL), section.get("max_full_hooks", gate.DEFAULT_FULL_HOOKS))
    assert gate.parse_settings(text) == expected


@pytest.mark.parametrize("text", [
    'hook.spool = "/elsewhere"\n',                      # dotted key
    '[hook]\nspool = "/with\\u0020escape"\n',            # an escape
    '["hook"]\nspool = "/quoted/table"\n',               # quoted table name
    '[hook]\nspool = """/multi\nline"""\n',              # multi-line string
    '[hook]\nmax_full_hooks = 0x10\n',                   # not a decimal
    '[hook]\nspool = "relative"\n',                      # not a path the hook takes
    '[hook]\nspool = "/unterminated\n',
])
def test_anything_else_is_left_to_tomllib(text: str) -> None:
    assert gate.parse_settings(text) is None


def test_records_round_trip_and_garbage_is_refused() -> None:
    fields = {"argv": b"1\x002\x00host\x00c o m m", "status": b"Uid:\t0\t0\t0\t0\n", "exe": b"\xff/x"}
    assert gate.decode_record(gate.encode_record(fields)) == fields
    with pytest.raises(ValueError):
        gate.decode_record(gate.encode_record(fields)[:-3])
    with pytest.raises(ValueError):
        gate.decode_record(b"argv\x00zz\x00")


def test_program_key_is_stable_and_tells_programs_apart() -> None:
    key = gate.program_key(1000, "/usr/bin/a", 11)
    assert key == gate.program_key(1000, "/usr/bin/a", 11) and len(key) == 16
    assert len({key, gate.program_key(1000, "/usr/bin/b", 11), gate.program_key(0, "/usr/bin/a", 11),
                gate.program_key(1000, "/usr/bin/a", 6)}) == 4


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; sys.path.insert(0, sys.argv[1]); {statement}; print(' '.join(sorted(sys.modules)))"
    return set(subprocess.run([sys.executable, "-I", "-S", "-c", code, str(REPO)], capture_output=True,
                              text=True, check=True).stdout.split())


HEAVY = {"dataclasses", "typing", "tomllib", "hashlib", "signal", "enum", "re", "json"}


@pytest.mark.parametrize("statement", ["from collectors.corehook import gate",
                                       "from collectors.corehook.hook import main"])
def test_the_light_path_imports_next_to_nothing(statement: str) -> None:
    """What the launcher loads before it knows whether it gets a slot: the hook module and
    the gate, none of the heavy modules (reporter, the minimizer, dataclasses, typing,
    tomllib, hashlib, signal)."""
    loaded = _modules_after(statement)
    ours = {m for m in loaded if m.startswith(("collectors", "reporter", "coripper"))}
    assert ours <= {"collectors", "collectors.corehook", "collectors.corehook.gate",
                    "collectors.corehook.hook"}
    assert not HEAVY & loaded


def test_records_fold_into_counts_and_unfinished_ones_are_swept(tmp_path: Path) -> None:
    """Two shed records of one program (a live process's /proc, read as a light hook reads
    it) fold into one minimal directory counting both; an orphaned temporary record older
    than a minute is removed, a young one left."""
    import os
    import time

    from collectors.corehook import shedfold
    from reporter.dumpdir import DumpDir, iter_problem_dirs

    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    config = tmp_path / "hook.toml"
    config.write_text(f'[hook]\nspool = "{spool}"\npostprocess = false\n')
    state_fd = gate.open_state(str(spool))
    victim = subprocess.Popen(["sleep", "60"])
    try:
        pid, now = victim.pid, int(time.time())
        fields = gate.light_snapshot(pid)
        exe = os.readlink(f"/proc/{pid}/exe")
        words = [str(pid), str(pid), str(pid), str(pid), "0", "0", "11", str(now), "0", "1", "host", "sleep"]
        for n in range(2):
            record = {"argv": "\0".join(words).encode(), "slots": b"8", **fields}
            gate.write_record(state_fd, record, now + n, pid)
        shed = spool / gate.STATE_DIR / gate.SHED_DIR
        old, young = shed / ".old.rec.tmp", shed / ".young.rec.tmp"
        old.write_bytes(b"argv")
        young.write_bytes(b"argv")
        os.utime(old, (now - 120, now - 120))
        lock = gate.try_lock(state_fd, gate.FOLD_LOCK)
        assert lock is not None
        shedfold.fold_while_pending(str(config), state_fd, lock)
        assert gate.pending_records(state_fd) == []
        assert not old.exists() and young.exists()
    finally:
        os.close(state_fd)
        victim.kill()
        victim.wait()
    [path] = list(iter_problem_dirs(str(spool)))
    with DumpDir.open(path, readonly=True) as dd:
        assert dd.load_text("count") == "2" and dd.load_text("counted_without_core") == "2"
        assert dd.load_text("executable") == exe
        assert dd.load_text("reason").endswith("(no core: load shedding, 8 hooks already capturing)")
