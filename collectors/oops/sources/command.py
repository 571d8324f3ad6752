"""Running the external commands some sources read from (``dmesg``, ``journalctl``).

Through the one command runner, :func:`collectors.runner.run`: no shell, ``LC_ALL=C`` and a
clean environment, a timeout that kills the command's process group, capped output and the
duration recorded. The sources treat a program that is not installed as a failure of the
source, so :func:`run_command` names it in ``error``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from collectors.runner import CommandResult, run

__all__ = ["COMMAND_MAX_OUTPUT", "COMMAND_TIMEOUT", "CommandResult", "run_command"]

COMMAND_TIMEOUT = 300.0
# A boot's kernel log from the journal of a crash-looping host can be large; beyond this
# the output is cut (``stdout_truncated``) rather than held in memory whole.
COMMAND_MAX_OUTPUT = 512 << 20


def run_command(argv: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> CommandResult:
    """Run a source's command through :func:`collectors.runner.run`; never raises. A
    program that is not installed comes back with ``error`` "not installed"."""
    res = run(argv, timeout=timeout, max_stdout=COMMAND_MAX_OUTPUT)
    if res.absent:
        return dataclasses.replace(res, error="not installed")
    return res
