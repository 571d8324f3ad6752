"""``crashkit hook install | status | uninstall`` against the real core_pattern (under the
host-wide lock; conftest's ``core_pattern`` restores it even if we fail)."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

from testlib import (CORE_PATTERN, CORE_PIPE_LIMIT, core_pattern, python_exe, require_core_pattern,
                      wait_for)


def crashkit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([python_exe(), "-m", "collectors.cli", *args], capture_output=True,
                          text=True, timeout=60)


def test_install_status_uninstall_round_trip():  # type: ignore[no-untyped-def]
    require_core_pattern()
    base = Path(tempfile.mkdtemp(prefix="ck", dir="/tmp"))
    state, spool = base / "st", base / "spool"
    try:
        _round_trip(base, state, spool)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _round_trip(base: Path, state: Path, spool: Path) -> None:
    # Start from a known pattern and pipe limit; restored afterwards whatever happens.
    with core_pattern("core.%p.ck-test", pipe_limit=16):
        r = crashkit("hook", "install", "--state-dir", str(state), "--spool", str(spool), "--json")
        assert r.returncode == 0, r.stderr
        installed = json.loads(r.stdout)
        launcher = state / "crashkit-hook"
        assert CORE_PATTERN.read_text().strip() == f"|{launcher} %P %p %i %I %u %g %s %t %c %d %h %e"
        assert installed["previous_core_pattern"] == "core.%p.ck-test"
        assert CORE_PIPE_LIMIT.read_text().strip() == "0"  # every crash piped: load shedding
        assert launcher.read_text().startswith("#!") and spool.is_dir()
        assert f'spool = "{spool}"' in (state / "hook.toml").read_text()

        # Installing again must not save our own pattern as "previous".
        r = crashkit("hook", "install", "--state-dir", str(state), "--spool", str(spool), "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["was_installed"] is True

        r = crashkit("hook", "status", "--state-dir", str(state), "--json")
        status = json.loads(r.stdout)
        assert r.returncode == 0
        assert status["installed"] and status["executable_exists"] and status["executable_is_ours"]
        assert status["saved_core_pattern"] == "core.%p.ck-test"
        assert status["spool"] == str(spool) and status["spool_problems"] == 0

        # A pattern pointing at a missing launcher is a problem (exit 1).
        launcher.rename(base / "moved")
        r = crashkit("hook", "status", "--state-dir", str(state))
        assert r.returncode == 1 and "MISSING" in r.stdout
        (base / "moved").rename(launcher)

        r = crashkit("hook", "uninstall", "--state-dir", str(state))
        assert r.returncode == 0, r.stderr
        assert CORE_PATTERN.read_text().strip() == "core.%p.ck-test"
        assert CORE_PIPE_LIMIT.read_text().strip() == "16"  # what was there before
        r = crashkit("hook", "status", "--state-dir", str(state), "--json")
        assert json.loads(r.stdout)["installed"] is False

        r = crashkit("hook", "uninstall", "--state-dir", str(state))
        assert r.returncode == 2 and "not installed" in r.stderr and "Traceback" not in r.stderr


def test_install_refuses_a_pattern_longer_than_the_kernel_takes():  # type: ignore[no-untyped-def]
    require_core_pattern()
    with core_pattern("core", pipe_limit=0):
        r = crashkit("hook", "install", "--state-dir", "/tmp/" + "x" * 100)
        assert r.returncode == 2 and "127" in r.stderr
        assert CORE_PATTERN.read_text().strip() == "core"


DOCS = Path(__file__).resolve().parents[3] / "docs" / "hook.md"


def _status_keys_in_docs() -> set[str]:
    text = DOCS.read_text()
    section = text[text.index("### `crashkit hook status --json`"):]
    section = section[: section.index("\n## ")]
    return set(re.findall(r"^\| `(\w+)` \|", section, re.M))


def test_status_json_keys_are_the_documented_ones():  # type: ignore[no-untyped-def]
    base = Path(tempfile.mkdtemp(prefix="ck", dir="/tmp"))
    try:
        r = crashkit("hook", "status", "--state-dir", str(base / "st"), "--json")
        assert r.returncode == 0, r.stderr
        assert set(json.loads(r.stdout)) == _status_keys_in_docs()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_install_creates_a_missing_spool_and_refuses_unusable_ones():  # type: ignore[no-untyped-def]
    require_core_pattern()
    base = Path(tempfile.mkdtemp(prefix="ck", dir="/tmp"))
    state = base / "st"
    try:
        with core_pattern("core", pipe_limit=0):
            spool = base / "a" / "b" / "spool"
            r = crashkit("hook", "install", "--state-dir", str(state), "--spool", str(spool))
            assert r.returncode == 0, r.stderr
            st = spool.lstat()
            assert stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and st.st_mode & 0o777 == 0o751
            crashkit("hook", "uninstall", "--state-dir", str(state))

            real = base / "real"
            real.mkdir(mode=0o700)
            link = base / "link"
            link.symlink_to(real)
            writable = base / "writable"
            writable.mkdir()
            writable.chmod(0o777)
            a_file = base / "file"
            a_file.write_text("x")
            for bad, why in ((link, "symbolic link"), (writable, "writable by others"),
                             (a_file, "not a directory")):
                r = crashkit("hook", "install", "--state-dir", str(state), "--spool", str(bad))
                assert r.returncode == 2, (bad, r.stdout, r.stderr)
                assert why in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
                assert "Traceback" not in r.stderr
                assert CORE_PATTERN.read_text().strip() == "core"
            assert os.listdir(real) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_long_spool_path_does_not_lengthen_the_pattern(programs):  # type: ignore[no-untyped-def]
    # The spool travels in hook.toml, not in core_pattern: a 200-byte spool path installs,
    # and a crash lands there.
    require_core_pattern()
    base = Path(tempfile.mkdtemp(prefix="ck", dir="/tmp"))
    state = base / "st"
    spool = base / ("s" * 100) / ("p" * 100)
    try:
        with core_pattern("core", pipe_limit=0):
            r = crashkit("hook", "install", "--state-dir", str(state), "--spool", str(spool), "--json")
            assert r.returncode == 0, r.stderr
            pattern = CORE_PATTERN.read_text().strip()
            assert len(pattern) <= 127 and str(spool) not in pattern
            proc = subprocess.Popen([str(programs.crasher()), "segv"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, preexec_fn=lambda: resource.setrlimit(
                                        resource.RLIMIT_CORE, (resource.RLIM_INFINITY,) * 2))
            assert proc.wait(timeout=60) == -signal.SIGSEGV
            assert wait_for(lambda: any(n.startswith("ccpp-") and not n.endswith(".new")
                                        for n in os.listdir(spool)), timeout=60)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_relative_spool_is_made_absolute():  # type: ignore[no-untyped-def]
    require_core_pattern()
    base = Path(tempfile.mkdtemp(prefix="ck", dir="/tmp"))
    try:
        with core_pattern("core", pipe_limit=0):
            r = subprocess.run([python_exe(), "-m", "collectors.cli", "hook", "install", "--state-dir",
                                str(base / "st"), "--spool", "rel-spool", "--json"], cwd=base,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            assert json.loads(r.stdout)["spool"] == str(base / "rel-spool")
            assert (base / "rel-spool").is_dir()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_uninstall_leaves_a_pattern_someone_else_installed_meanwhile():  # type: ignore[no-untyped-def]
    require_core_pattern()
    base = Path(tempfile.mkdtemp(prefix="ck", dir="/tmp"))
    state = base / "st"
    try:
        with core_pattern("core.%p.ck-test", pipe_limit=0):
            r = crashkit("hook", "install", "--state-dir", str(state), "--spool", str(base / "spool"))
            assert r.returncode == 0, r.stderr
            theirs = "|/usr/lib/systemd/systemd-coredump %P %u %g %s %t %c %h"
            CORE_PATTERN.write_text(theirs)
            r = crashkit("hook", "uninstall", "--state-dir", str(state))
            assert r.returncode == 2 and "changed after our install" in r.stderr
            assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
            assert CORE_PATTERN.read_text().strip() == theirs
            r = crashkit("hook", "status", "--state-dir", str(state), "--json")
            status = json.loads(r.stdout)
            assert status["installed"] is False and status["saved_core_pattern"] == "core.%p.ck-test"
    finally:
        shutil.rmtree(base, ignore_errors=True)
