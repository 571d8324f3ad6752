"""Running one rule's command: ``/bin/sh -c`` in the problem directory (§3.3).

This is the one place reporter runs a shell, by libreport's rule: event commands are shell
text. The child gets the inherited environment plus the event's options, ``DUMP_DIR``,
``EVENT`` and ``REPORT_CLIENT_SLAVE=1``; stdout and stderr are merged; every output line is
logged and appended to the ``event_log`` element (as report-gtk does: timestamped, trimmed
from 30 KiB down to 20 KiB at a line boundary). The slave protocol (``ALERT``, ``ASK``,
``ASK_YES_NO``...) is answered non-interactively: empty answers and "no". A timeout, when
given, kills the command's whole process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Mapping

from reporter import elements
from reporter.dumpdir import DumpDir
from reporter.errors import ProblemDirError
from reporter.events.engine import CommandOutcome
from reporter.events.rules import Rule

EVENT_LOG = "event_log"
EVENT_LOG_HIGH_WATERMARK = 30 * 1024
EVENT_LOG_LOW_WATERMARK = 20 * 1024
MAX_LINE = 64 * 1024
# Answer lines of the slave protocol, in the order libreport tests the prefixes.
_QUESTIONS = (("ALERT ", None), ("ASK_YES_NO_YESFOREVER ", "N"), ("ASK_YES_NO_SAVE_RESULT ", "N"),
              ("ASK_YES_NO ", "N"), ("ASK ", ""), ("ASK_PASSWORD ", ""))

Log = Callable[[str], None]


#: Wrappers of our commands (reporter-crashkit..., crashkit) that run ``python -m MODULE``.
WRAPPERS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "bin")


def tool_path(path: str | None) -> str:
    """*path* with our own scripts' directory added, then :data:`WRAPPERS_DIR`, so that rules
    find ``reporter-crashkit`` and ``crashkit`` even when started from the hook with an empty
    environment (its interpreter, the real path of a venv's python, has none of the venv's
    scripts next to it)."""
    ours = [os.path.dirname(sys.executable), sysconfig.get_paths()["scripts"], WRAPPERS_DIR]
    entries = [p for p in (path or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(":") if p]
    return ":".join(dict.fromkeys(entries + ours))


def wrapper_env() -> dict[str, str]:
    """What the wrappers of :data:`WRAPPERS_DIR` run: this interpreter, with the directory of
    our packages and this process's site directories (the hook runs ``python -I -S`` with them
    on ``sys.path``)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # above reporter/
    sites = [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)]
    return {"CRASHKIT_PYTHON": sys.executable, "CRASHKIT_PYTHONPATH": ":".join(dict.fromkeys([root, *sites]))}


def command_env(dump_dir: str, event: str, options: Mapping[str, str],
                extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of an event command."""
    env = {**wrapper_env(), **os.environ}
    env.update(options)
    env["DUMP_DIR"] = dump_dir
    env["EVENT"] = event
    env["REPORT_CLIENT_SLAVE"] = "1"
    env["PATH"] = tool_path(env.get("PATH"))
    if extra:
        env.update(extra)
    return env


def trim_event_log(text: str) -> str:
    """libreport's trim: past 30 KiB keep the last 20 KiB, starting at a line boundary."""
    if len(text) <= EVENT_LOG_HIGH_WATERMARK:
        return text
    cut = text[len(text) - EVENT_LOG_LOW_WATERMARK:]
    nl = cut.find("\n")
    return cut[nl + 1:] if nl >= 0 else cut


def append_event_log(path: str, lines: list[str], when: float | None = None) -> None:
    """Append *lines* to ``event_log`` of *path* (a directory gone meanwhile is fine)."""
    if not lines:
        return
    stamp = elements.iso_date(time.time() if when is None else when)
    try:
        with DumpDir.open(path, timeout=30) as dd:
            log = dd.load_text(EVENT_LOG)
            if log and not log.endswith("\n"):
                log += "\n"
            log += "".join(f"{stamp}> {line}\n" for line in lines)
            dd.save_text(EVENT_LOG, trim_event_log(log))
    except (ProblemDirError, OSError):
        pass


def answer_for(line: str) -> str | None:
    """The non-interactive answer to a slave-protocol line, ``None`` if none is due."""
    for prefix, answer in _QUESTIONS:
        if line.startswith(prefix):
            return answer
    return None


class ShellCommand:
    """Runs rules' commands for one event on one directory (``run_command`` of the engine)."""

    def __init__(self, path: str, event: str, options: Mapping[str, str], *, log: Log | None = None,
                 timeout: float | None = None, extra_env: Mapping[str, str] | None = None,
                 keep_event_log: bool = True) -> None:
        self.path = path
        self.dump_dir = os.path.realpath(path)
        self.event = event
        self.env = command_env(self.dump_dir, event, options, extra_env)
        self.log = log
        self.timeout = timeout
        self.keep_event_log = keep_event_log

    def __call__(self, rule: Rule) -> CommandOutcome:
        """Run *rule*'s command; returns its exit status (128+N when killed by signal N)."""
        proc = subprocess.Popen(["/bin/sh", "-c", rule.command], cwd=self.path, env=self.env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
        timer = None
        if self.timeout is not None:
            timer = threading.Timer(self.timeout, _kill_group, (proc.pid,))
            timer.daemon = True
            timer.start()
        lines: list[str] = []
        try:
            self._pump(proc, lines)
            rc = proc.wait()
        finally:
            if timer is not None:
                timer.cancel()
        if rc < 0:
            rc = 128 - rc
        if self.keep_event_log:
            append_event_log(self.path, lines)
        return CommandOutcome(rule, rc, lines[-1] if lines else "")

    def _pump(self, proc: subprocess.Popen[bytes], lines: list[str]) -> None:
        assert proc.stdout is not None and proc.stdin is not None
        for raw in iter(lambda: proc.stdout.readline(MAX_LINE), b""):  # type: ignore[union-attr]
            line = raw.decode("utf-8", "replace").rstrip("\n")
            answer = answer_for(line)
            if answer is not None:
                try:
                    proc.stdin.write(answer.encode() + b"\n")
                    proc.stdin.flush()
                except OSError:
                    pass
            lines.append(line)
            if self.log is not None:
                self.log(line)
        try:
            proc.stdin.close()
        except OSError:
            pass
        proc.stdout.close()


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
