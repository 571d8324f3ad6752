"""Running the external commands some sources read from (``dmesg``, ``journalctl``)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

COMMAND_TIMEOUT = 300.0


@dataclass(frozen=True)
class CommandResult:
    """Outcome of one external command (``error`` set when it could not run at all)."""

    argv: tuple[str, ...]
    rc: int | None
    stdout: bytes
    stderr: bytes
    error: str | None = None


def run_command(argv: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> CommandResult:
    """Run a command without a shell, with ``LC_ALL=C`` and a timeout; never raises."""
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LC_ALL": "C",
           "SYSTEMD_PAGER": "", "PAGER": "cat"}
    try:
        proc = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, env=env, check=False)
    except FileNotFoundError:
        return CommandResult(tuple(argv), None, b"", b"", "not installed")
    except subprocess.TimeoutExpired:
        return CommandResult(tuple(argv), None, b"", b"", f"timed out after {timeout:g} s")
    except OSError as exc:
        return CommandResult(tuple(argv), None, b"", b"", str(exc))
    return CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
