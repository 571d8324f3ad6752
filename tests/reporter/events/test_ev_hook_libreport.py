"""``crashkit hook install --with-libreport``: our rules land in libreport's events.d and load
with libreport's own report_event.conf."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.corehook import install as install_mod
from reporter.events import engine
from reporter.events.rules import load_rules

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ev_helpers import make_dir  # noqa: E402


def test_install_into_libreport_tree_and_uninstall(fixtures_dir: Path, tmp_path: Path) -> None:
    etc = tmp_path / "libreport"
    shutil.copytree(fixtures_dir / "event-conf", etc)
    for p in [etc, *etc.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    dest = install_mod.install_libreport_events(str(etc / "events.d"))
    assert dest == str(etc / "events.d" / "crashkit_event.conf")
    assert os.stat(dest).st_mode & 0o777 == 0o644
    loaded = load_rules(str(etc / "report_event.conf"))
    assert loaded.warnings == []
    ours = [r for r in loaded.rules if r.source == dest]
    assert ours and loaded.rules.index(ours[0]) > 0  # in glob order among the other files
    crash = make_dir(tmp_path / "spool", "ours", {"crashkit_version": "0.1.0", "core_backtrace": "{}",
                                                  "executable": "/usr/bin/victim"})
    applying = [r for r in ours if r.events == ("post-create",)]
    assert engine.pop_next(list(applying), str(crash), "post-create") is not None
    assert install_mod.remove_libreport_events(str(etc / "events.d")) == dest
    assert not os.path.exists(dest)
    (etc / "events.d" / "crashkit_event.conf").write_text("# someone else's file\n")
    assert install_mod.remove_libreport_events(str(etc / "events.d")) is None  # not ours: kept
    assert install_mod.install_libreport_events(str(tmp_path / "no-libreport")) is None


def test_cli_flag(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the hook's spool must be root's")
    proc_sys = tmp_path / "proc-sys-kernel"
    proc_sys.mkdir()
    (proc_sys / "core_pattern").write_text("core\n")
    (proc_sys / "core_pipe_limit").write_text("0\n")
    events_d = tmp_path / "events.d"
    events_d.mkdir()
    state = tmp_path / "state"
    env = {**os.environ, "PYTHONPATH": str(REPO), "CRASHKIT_PROC_SYS_KERNEL": str(proc_sys),
           "CRASHKIT_LIBREPORT_EVENTS_D": str(events_d), "CRASHKIT_CONFIG": str(tmp_path / "none.toml")}
    cli = [sys.executable, "-m", "collectors.cli", "hook"]
    out = subprocess.run([*cli, "install", "--with-libreport", "--state-dir", str(state), "--spool",
                          str(tmp_path / "spool"), "--json"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["libreport_events"] == str(events_d / "crashkit_event.conf")
    assert (events_d / "crashkit_event.conf").read_text().startswith("# crashkit: libreport event rules")
    out = subprocess.run([*cli, "uninstall", "--state-dir", str(state), "--json"], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert not (events_d / "crashkit_event.conf").exists()
