"""The crash hook's log: syslog (``/dev/log``, facility daemon) and optionally a file.

The kernel starts the hook with no useful stderr, so every outcome is one log line, e.g.
``crashkit-hook: process 4242 (/usr/bin/crasher) of user 1000 killed by SIGSEGV - dumping core``.
Logging never raises.
"""

from __future__ import annotations

import os
import stat
import time

TAG = "crashkit-hook"
MAX_LINE = 2000
_state: dict[str, object] = {"file": None, "syslog": True}


def setup(log_file: str | None = None, use_syslog: bool = True) -> None:
    """Choose the destinations (call again after the config is loaded)."""
    _state["file"] = log_file
    _state["syslog"] = use_syslog


def log(message: str, *, error: bool = False) -> None:
    """Write one line to syslog and the log file (if configured)."""
    line = clean_line(message)
    if _state["syslog"]:
        try:
            import syslog

            syslog.openlog(TAG, syslog.LOG_PID, syslog.LOG_DAEMON)
            syslog.syslog(syslog.LOG_ERR if error else syslog.LOG_NOTICE, line)
        except Exception:  # noqa: BLE001 - logging must never take the hook down
            pass
    path = _state["file"]
    if isinstance(path, str):
        try:
            # O_NONBLOCK: a FIFO planted at the path fails (ENXIO) instead of hanging us.
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                         | os.O_NONBLOCK, 0o600)
            try:
                st = os.fstat(fd)
                # Only our own plain file: not a device, nor a hard link somebody made to a
                # file of ours elsewhere (a log in a shared directory).
                if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_uid != os.geteuid():
                    return
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
                os.write(fd, f"{stamp} {TAG}[{os.getpid()}]: {line}\n".encode("utf-8", "replace"))
            finally:
                os.close(fd)
        except OSError:
            pass


def clean_line(message: str) -> str:
    """*message* as one log line: whitespace runs become one space, other control
    characters (terminal escapes from a hostile comm or path) ``?``, at most MAX_LINE."""
    line = " ".join(message.split())
    if not line.isprintable():
        line = "".join(c if c.isprintable() else "?" for c in line)
    return line[:MAX_LINE]


def signal_name(signo: int) -> str:
    """``SIGSEGV`` for 11, ``SIG42`` for an unnamed number (libreport writes the number)."""
    import signal

    try:
        return signal.Signals(signo).name
    except ValueError:
        return f"SIG{signo}"


def crash_line(pid: int, exe: str, uid: int, signo: int, outcome: str) -> str:
    """abrt's per-crash line: ``process N (exe) of user U killed by SIGX - <outcome>``."""
    return f"process {pid} ({exe}) of user {uid} killed by {signal_name(signo)} - {outcome}"
