"""collectors.runner: real programs, cut at their timeout, capped, in a clean environment."""

from __future__ import annotations

import os
import time
from pathlib import Path

from collectors import runner


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_output_exit_status_and_duration() -> None:
    res = runner.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (res.rc, res.stdout, res.stderr) == (3, b"out\n", b"err\n")
    assert not res.ok and res.failure == "sh: exit status 3: err"
    assert 0 < res.duration < 5
    ok = runner.run(["true"])
    assert ok.ok and ok.failure is None and ok.error is None


def test_missing_tool_is_absent_not_an_error() -> None:
    res = runner.run(["crashkit-no-such-tool"])
    assert res.absent and res.error is None and res.rc is None
    assert res.failure == "crashkit-no-such-tool: not installed"


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child"
    start = time.monotonic()
    # the grandchild holds no pipe of ours: only the group kill stops it
    res = runner.run(["sh", "-c", f"sleep 60 >/dev/null 2>&1 & echo $! > {pidfile}; sleep 60"],
                     timeout=0.5)
    assert time.monotonic() - start < 5
    assert res.timed_out and res.rc is None and res.error == "timed out after 0.5 s"
    assert res.failure == "sh: timed out after 0.5 s"
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_output_is_capped_and_the_program_still_finishes() -> None:
    res = runner.run(["sh", "-c", "head -c 3000000 /dev/zero; echo done >&2"], max_stdout=1000)
    assert len(res.stdout) == 1000 and res.stdout_truncated
    assert res.rc == 0 and res.stderr == b"done\n" and not res.stderr_truncated


def test_killed_by_a_signal_is_an_error() -> None:
    res = runner.run(["sh", "-c", "kill -KILL $$"])
    assert res.rc == -9 and res.error == "killed by SIGKILL"


def test_clean_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CRASHKIT_SECRET_VAR", "x")
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    monkeypatch.setenv("PATH", f"relative/dir::{os.environ['PATH']}")
    env = dict(line.split("=", 1) for line in runner.run(["env"]).stdout.decode().splitlines())
    assert env["LC_ALL"] == "C" and env["LANG"] == "C"
    assert "CRASHKIT_SECRET_VAR" not in env
    path = env["PATH"].split(":")
    assert all(p.startswith("/") for p in path) and "/usr/sbin" in path


def test_no_shell_interpretation(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    res = runner.run(["echo", f"; touch {marker}", "$(id)"])
    assert res.stdout == f"; touch {marker} $(id)\n".encode()
    assert not marker.exists()


def test_search_path_finds_a_tool_of_ours(tmp_path: Path) -> None:
    tool = tmp_path / "crashkit-fake-tool"
    tool.write_text("#!/bin/sh\necho fake \"$@\"\n")
    tool.chmod(0o755)
    assert runner.run(["crashkit-fake-tool"]).absent
    res = runner.run(["crashkit-fake-tool", "a b"], path=str(tmp_path))
    assert res.stdout == b"fake a b\n"
