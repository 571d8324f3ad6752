"""coripper.progress: a progress line on a terminal after the delay, erased at the end;
nothing on a pipe, in the hook, or before the delay."""

from __future__ import annotations

import io
import os
import pty
import time

import pytest

from coripper.progress import Progress, describe, wanted


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_describe() -> None:
    assert describe("writing core", 3 << 30, 4 << 30, 2.0) == \
        "writing core: 3.0 GiB of 4.0 GiB (75%), 1.5 GiB/s"
    assert describe("x", 512, None, 0) == "x: 512 B"


def test_shown_after_the_delay_and_erased(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRASHKIT_HOOK_CHILD", raising=False)
    monkeypatch.delenv("CRASHKIT_PROGRESS", raising=False)
    term = Terminal()
    with Progress("work", 100, stream=term, delay=0.05) as p:
        p.update(10)
        assert term.getvalue() == ""  # not before the delay
        time.sleep(0.06)
        p.update(50)
        assert term.getvalue().startswith("\rwork: 50 B of 100 B (50%)")
        p.update(60)  # redrawn at most five times a second
        assert term.getvalue().count("\r") == 1
    assert term.getvalue().endswith("\r\x1b[K")  # erased


@pytest.mark.parametrize("env", [{"CRASHKIT_HOOK_CHILD": "1"}, {"CRASHKIT_PROGRESS": "0"}])
def test_never_in_the_hook_or_when_off(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    term = Terminal()
    with Progress("work", 100, stream=term, delay=0) as p:
        p.update(50)
    assert term.getvalue() == "" and not wanted(term)


def test_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRASHKIT_HOOK_CHILD", raising=False)
    monkeypatch.delenv("CRASHKIT_PROGRESS", raising=False)
    r, w = os.pipe()
    master, slave = pty.openpty()
    try:
        with os.fdopen(w, "w") as pipe, os.fdopen(slave, "w") as tty:
            assert not wanted(pipe) and wanted(tty)
    finally:
        os.close(r)
        os.close(master)
