"""Helpers of the security regression tests: problem directories built by hand, and the real
``crashkit`` console script run in a subprocess with its address space capped (so that an
unbounded read fails fast with ``MemoryError`` instead of eating the machine's memory)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

#: The console script installed beside this interpreter (``.venv/bin/crashkit``).
CRASHKIT = Path(sys.executable).with_name("crashkit")
#: Address-space cap of the CLI under test: far below the 6 GiB sparse elements, far above
#: what listing a spool needs (the CLI starts in about 300 MiB of address space).
MEMORY_CAP = 1 << 30


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def crashkit(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """Run the real ``crashkit`` with *args*; stdout and stderr are kept as bytes."""
    env = {k: v for k, v in os.environ.items() if k != "CRASHKIT_SPOOL"}
    return subprocess.run([str(CRASHKIT), *args], capture_output=True, env=env, timeout=timeout,
                          preexec_fn=_cap_memory, check=False)


def problem_dir(spool: Path, name: str, **elements: str | bytes) -> Path:
    """A valid problem directory *spool*/*name*: ``time``, ``type`` = CCpp, a ``reason``, plus
    *elements* (text or bytes)."""
    d = spool / name
    d.mkdir(parents=True)
    (d / "time").write_text("1700000000")
    (d / "type").write_text("CCpp")
    (d / "reason").write_text(f"{name} killed by SIGSEGV")
    for element, value in elements.items():
        data = value.encode() if isinstance(value, str) else value
        (d / element).write_bytes(data)
    return d
