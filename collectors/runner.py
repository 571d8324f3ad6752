"""The one way collectors run an external command (DESIGN.md, "Conventions").

:func:`run` takes an argv list (never a shell string), starts the program in a new session
with a clean environment (``LC_ALL=C``, a PATH without empty or relative entries, no pager,
no colour), reads stdout and stderr up to a cap each, and kills the whole process group
when the timeout expires. It never raises for a failed command: a program that is not
installed is ``absent``; one that could not start, was cut at its timeout or was killed by
a signal carries the reason in ``error``. Standard library only.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_STDOUT = 16 << 20
DEFAULT_MAX_STDERR = 1 << 20
#: Appended to the caller's PATH when missing: the tools we run live in sbin too.
SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
#: Variables passed through from our own environment (tools that need a home or a runtime
#: dir for their client config); everything else is dropped.
PASSTHROUGH = ("HOME", "XDG_RUNTIME_DIR", "TZ")
_CHUNK = 1 << 16


@dataclass(frozen=True)
class CommandResult:
    """Outcome of one external command.

    ``rc`` is the exit status (negative: killed by that signal), ``None`` when the program
    did not run to its end. ``absent`` means the program is not installed; ``error`` says why
    it did not run or finish (not found is not an error). ``duration`` is wall-clock seconds.
    """

    argv: tuple[str, ...]
    rc: int | None
    stdout: bytes = b""
    stderr: bytes = b""
    duration: float = 0.0
    error: str | None = None
    absent: bool = False
    timed_out: bool = False
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    @property
    def ok(self) -> bool:
        """Ran to its end with exit status 0."""
        return not self.absent and self.error is None and self.rc == 0

    @property
    def failure(self) -> str | None:
        """One line saying why the command did not succeed (``None`` when :attr:`ok`)."""
        if self.ok:
            return None
        name = os.path.basename(self.argv[0]) if self.argv else "?"
        if self.absent:
            return f"{name}: not installed"
        if self.error:
            return f"{name}: {self.error}"
        detail = first_line(self.stderr) or first_line(self.stdout)
        return f"{name}: exit status {self.rc}" + (f": {detail}" if detail else "")


def first_line(data: bytes, limit: int = 200) -> str:
    """The first non-empty line of *data*, decoded, stripped and shortened to *limit*."""
    for line in data.splitlines():
        text = line.decode("utf-8", "replace").strip()
        if text:
            return text[:limit]
    return ""


def clean_path(path: str | None = None) -> str:
    """*path* (default: ours) without empty or relative entries, the system dirs appended."""
    entries = [p for p in (path if path is not None else os.environ.get("PATH", "")).split(":")
               if p.startswith("/")]
    entries += [p for p in SYSTEM_PATH if p not in entries]
    return ":".join(dict.fromkeys(entries))


def clean_env(path: str | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a command gets: ``LC_ALL=C``, a clean PATH, no pager or colours."""
    env = {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
    env.update({"PATH": clean_path(path), "LC_ALL": "C", "LANG": "C", "PAGER": "cat",
                "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0", "NO_COLOR": "1", "TERM": "dumb"})
    if extra:
        env.update(extra)
    return env


def which(tool: str, path: str | None = None) -> str | None:
    """Where *tool* is found on the clean PATH (absolute names are checked as they are)."""
    if "/" in tool:
        return tool if os.access(tool, os.X_OK) and os.path.isfile(tool) else None
    return shutil.which(tool, path=clean_path(path))


def run(argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, path: str | None = None,
        env: Mapping[str, str] | None = None, max_stdout: int = DEFAULT_MAX_STDOUT,
        max_stderr: int = DEFAULT_MAX_STDERR, cwd: str | None = None) -> CommandResult:
    """Run *argv* without a shell; never raises for the command's own failures.

    *path* replaces our PATH as the search path (still cleaned); *env* adds variables.
    """
    args = tuple(argv)
    start = time.monotonic()
    exe = which(args[0], path) if args else None
    if exe is None:
        return CommandResult(args, None, absent=True)
    try:
        proc = subprocess.Popen((exe, *args[1:]), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=clean_env(path, env), cwd=cwd,
                                start_new_session=True, close_fds=True)
    except FileNotFoundError:
        return CommandResult(args, None, duration=time.monotonic() - start, absent=True)
    except OSError as exc:
        return CommandResult(args, None, duration=time.monotonic() - start,
                             error=exc.strerror or str(exc))
    out, err, out_cut, err_cut, finished = _collect(proc, start + timeout, max_stdout, max_stderr)
    if not finished:
        _kill_group(proc)
        return CommandResult(args, None, out, err, time.monotonic() - start,
                             error=f"timed out after {timeout:g} s", timed_out=True,
                             stdout_truncated=out_cut, stderr_truncated=err_cut)
    rc = proc.returncode
    error = None
    if rc is not None and rc < 0:
        try:
            error = f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            error = f"killed by signal {-rc}"
    return CommandResult(args, rc, out, err, time.monotonic() - start, error=error,
                         stdout_truncated=out_cut, stderr_truncated=err_cut)


def _collect(proc: subprocess.Popen[bytes], deadline: float, max_out: int,
             max_err: int) -> tuple[bytes, bytes, bool, bool, bool]:
    """Read both pipes until EOF and exit, or until *deadline*; keep at most the caps
    (the rest is read and dropped, so the program never blocks on a full pipe)."""
    assert proc.stdout is not None and proc.stderr is not None
    bufs = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    caps = {proc.stdout.fileno(): max_out, proc.stderr.fileno(): max_err}
    cut = dict.fromkeys(bufs, False)
    sel = selectors.DefaultSelector()
    try:
        for stream in (proc.stdout, proc.stderr):
            os.set_blocking(stream.fileno(), False)
            sel.register(stream.fileno(), selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in sel.select(left):
                fd = int(key.fd)
                try:
                    chunk = os.read(fd, _CHUNK)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(fd)
                    continue
                room = caps[fd] - len(bufs[fd])
                if len(chunk) > room:
                    cut[fd] = True
                bufs[fd] += chunk[:max(room, 0)]
        finished = False
        if not sel.get_map():
            try:
                proc.wait(max(deadline - time.monotonic(), 0))
                finished = True
            except subprocess.TimeoutExpired:
                pass
    finally:
        sel.close()
        proc.stdout.close()
        proc.stderr.close()
    out_fd, err_fd = list(bufs)
    return bytes(bufs[out_fd]), bytes(bufs[err_fd]), cut[out_fd], cut[err_fd], finished


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the command's process group (its own session: it and what it forked)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass
