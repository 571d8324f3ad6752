"""collectors.oops.sources.command runs the sources' commands through collectors.runner.

Real programs, no stubs: ``env`` shows the environment the command got, ``sleep`` is cut at
its timeout, a name that is not installed comes back as an error, not an exception.
"""

from __future__ import annotations

import os

from collectors.oops.sources.command import run_command


def test_no_shell_clean_locale_and_duration():
    res = run_command(["env"], timeout=30)
    assert res.ok and res.rc == 0
    env = dict(line.split("=", 1) for line in res.stdout.decode().splitlines() if "=" in line)
    assert env["LC_ALL"] == "C"
    assert "SYSTEMD_PAGER" in env and env["PAGER"] == "cat"
    assert res.duration > 0


def test_arguments_are_not_interpreted_by_a_shell():
    res = run_command(["echo", "$HOME;", "*"], timeout=30)
    assert res.stdout == b"$HOME; *\n"


def test_timeout_kills_the_command():
    res = run_command(["sleep", "30"], timeout=0.5)
    assert res.rc is None and res.timed_out
    assert res.error is not None and res.error.startswith("timed out")
    assert res.duration < 10


def test_not_installed_is_an_error_not_an_exception():
    res = run_command([f"crashkit-no-such-tool-{os.getpid()}"], timeout=5)
    assert res.absent and res.error == "not installed" and not res.ok


def test_exit_status_and_stderr_are_kept():
    res = run_command(["ls", f"/nonexistent-{os.getpid()}"], timeout=30)
    assert res.rc not in (0, None) and res.error is None
    assert b"nonexistent" in res.stderr
