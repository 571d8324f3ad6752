"""Running our own helper commands from reporter (argv only, no shell, bounded).

reporter may not import collectors (DESIGN.md), so when a reporter wants the host's check
results or container state it runs ``crashkit check --json`` / ``crashkit state --json``
as commands, with a timeout, a clean ``LC_ALL=C`` environment and capped output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

MAX_OUTPUT = 16 << 20


@dataclass(frozen=True)
class Ran:
    """A finished command: exit status (``None``: did not run or timed out), output, why."""

    rc: int | None
    stdout: bytes = b""
    error: str = ""


def crashkit_argv(*args: str) -> list[str]:
    """``crashkit ARGS``: the installed command, else this interpreter running its module."""
    exe = shutil.which("crashkit")
    return [exe, *args] if exe else [sys.executable, "-m", "collectors.cli", *args]


def run(argv: list[str], timeout: float = 60.0) -> Ran:
    """Run *argv*; never raises for the command's own failure."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "CRASHKIT_CONFIG", "CRASHKIT_SPOOL",
                                                          "CRASHKIT_STATE_DIR", "PYTHONPATH")}
    env.update({"LC_ALL": "C", "LANG": "C"})
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              env=env, timeout=timeout, start_new_session=True, check=False)
    except FileNotFoundError:
        return Ran(None, error=f"{argv[0]}: not installed")
    except subprocess.TimeoutExpired:
        return Ran(None, error=f"{os.path.basename(argv[0])}: timed out after {timeout:g} s")
    except OSError as exc:
        return Ran(None, error=f"{argv[0]}: {exc.strerror}")
    return Ran(proc.returncode, proc.stdout[:MAX_OUTPUT])
