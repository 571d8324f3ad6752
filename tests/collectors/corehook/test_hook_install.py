"""``crashkit hook install | status | uninstall`` against the real core_pattern (under the
host-wide lock; conftest's ``core_pattern`` restores it even if we fail)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from conftest import CORE_PATTERN, CORE_PIPE_LIMIT, core_pattern, python_exe, require_core_pattern


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
    with core_pattern("core.%p.ck-test", pipe_limit=0):
        r = crashkit("hook", "install", "--state-dir", str(state), "--spool", str(spool), "--json")
        assert r.returncode == 0, r.stderr
        installed = json.loads(r.stdout)
        launcher = state / "crashkit-hook"
        assert CORE_PATTERN.read_text().strip() == f"|{launcher} %P %p %i %I %u %g %s %t %c %h %d %e"
        assert installed["previous_core_pattern"] == "core.%p.ck-test"
        assert CORE_PIPE_LIMIT.read_text().strip() == "16"
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
        assert CORE_PIPE_LIMIT.read_text().strip() == "0"
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
