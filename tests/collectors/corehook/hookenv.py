"""A private crashkit-hook installation for tests: short tmp paths (core_pattern holds 127
bytes), its own spool, config, log file and launcher. Crashes go through the real kernel via
tests/testlib.py's ``run_until_crash_with_pattern`` (host-wide lock, pattern restored).

Also the ``hook`` and ``crasher`` fixtures the crash tests share: a test module imports
``hook_fixture`` / ``crasher_fixture`` (named apart from the fixture, so test arguments do not
shadow the import). Not a conftest.py here: pytest imports every conftest.py as ``conftest``,
and a second one would shadow tests/conftest.py's fixtures for the modules after it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from testlib import Programs, require_core_pattern, run_until_crash_with_pattern, wait_for

from collectors.corehook import install
from reporter.dumpdir import iter_problem_dirs

FINAL = re.compile(r"(saved /|duplicate of |ignoring \(|error: |time limit |counted without core )")
#: A post-processing run that will not produce its elements (what postprocess.py logs then).
POSTPROCESS_FAILED = re.compile(r"postprocess\b.*(fail|[A-Za-z]+Error|could not|skipped|unusable|killed)")


class HookEnv:
    """base (0755) / bin (0755, test programs) / spool (0700) / st (launcher + hook.toml)."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="ck", dir="/tmp"))
        self.base.chmod(0o755)
        self.bin = self.base / "bin"
        self.bin.mkdir(mode=0o755)
        self.spool = self.base / "spool"
        self.spool.mkdir(mode=0o700)
        self.state = self.base / "st"
        self.state.mkdir(mode=0o755)
        self.log = self.base / "hook.log"
        self.paths = install.Paths(str(self.state))
        self.launcher = Path(self.paths.launcher)
        self.launcher.write_text(install.launcher_text(self.paths.hook_config))
        self.launcher.chmod(0o755)
        self.pattern = install.pattern_for(str(self.launcher))
        assert len(self.pattern) <= install.CORENAME_MAX
        self.configure()

    def configure(self, **settings: object) -> None:
        """Write hook.toml: our spool and log, no post-processing unless asked, plus *settings*."""
        values: dict[str, object] = {"spool": str(self.spool), "log_file": str(self.log),
                                     "postprocess": False, "min_free_space": 0}
        values.update(settings)
        lines = ["[hook]"]
        for key, value in values.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, (int, list)):
                text = repr(value).replace("'", '"')
            else:
                text = '"' + str(value) + '"'
            lines.append(f"{key} = {text}")
        Path(self.paths.hook_config).write_text("\n".join(lines) + "\n")

    def program(self, src: Path, name: str = "crasher", mode: int = 0o755) -> Path:
        """Copy a test program into bin/ under *name* (so ``reason`` says ``name killed by``)."""
        dst = self.bin / name
        shutil.copy(src, dst)
        dst.chmod(mode)
        return dst

    def final_lines(self) -> list[str]:
        if not self.log.exists():
            return []
        return [line for line in self.log.read_text(errors="replace").splitlines() if FINAL.search(line)]

    def wait_final(self, n: int, timeout: float = 60.0) -> list[str]:
        """Wait until the hook has logged *n* outcomes (it releases the kernel before it commits)."""
        assert wait_for(lambda: len(self.final_lines()) >= n, timeout=timeout), \
            f"hook logged {len(self.final_lines())} outcomes, expected {n}:\n{self.log_text()}"
        return self.final_lines()

    def postprocess_failures(self) -> list[str]:
        """The log lines that say a post-processing run failed."""
        return [line for line in self.log_text().splitlines() if POSTPROCESS_FAILED.search(line)]

    def wait_postprocessed(self, predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
        """Wait until *predicate* holds (post-processing wrote what the test needs); fail as soon
        as the hook log records a failed post-processing run, showing that line, instead of
        sleeping out the whole timeout."""
        failed: list[str] = []

        def done() -> bool:
            failed[:] = self.postprocess_failures()
            return bool(failed) or bool(predicate())

        finished = wait_for(done, timeout=timeout)
        assert not failed, "post-processing failed: " + " | ".join(failed)
        assert finished and predicate(), f"post-processing did not finish in {timeout} s:\n{self.log_text()}"

    def wait_element(self, d: Path, name: str, timeout: float = 60.0) -> None:
        """Wait for post-processing to write element *name* into problem directory *d*."""
        self.wait_postprocessed(lambda: (d / name).exists(), timeout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no log)"

    def crash(self, argv, *, env=None, preexec=None, outcomes: int | None = None):  # type: ignore[no-untyped-def]
        """Crash *argv* through the kernel with our hook; wait for the hook's outcome line."""
        before = len(self.final_lines())
        pid, sig = run_until_crash_with_pattern(argv, self.pattern, pipe_limit=16, env=env,
                                                preexec=preexec)
        self.wait_final(before + (1 if outcomes is None else outcomes))
        return pid, sig

    def dirs(self) -> list[Path]:
        return [Path(p) for p in iter_problem_dirs(str(self.spool))]

    def leftovers(self) -> list[str]:
        return [n for n in os.listdir(self.spool) if n.endswith(".new")]

    def run_hook(self, argv: list[str], stdin: bytes | int | None, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run the launcher by hand (as the kernel would, empty environment)."""
        kwargs = {"input": stdin} if isinstance(stdin, bytes) else {"stdin": stdin}
        return subprocess.run([str(self.launcher), *argv], env={}, capture_output=True,
                              timeout=timeout, **kwargs)

    def cleanup(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def element(d: Path, name: str) -> str:
    return (d / name).read_text(errors="replace")


@pytest.fixture(name="hook")
def hook_fixture() -> Iterator[HookEnv]:
    """A private hook installation, removed afterwards; skips unless core_pattern is writable."""
    require_core_pattern()
    env = HookEnv()
    yield env
    env.cleanup()


@pytest.fixture(name="crasher")
def crasher_fixture(hook: HookEnv, programs: Programs) -> Path:
    """tests/programs/crasher.c (PIE), copied into the hook's bin/ as ``crasher``."""
    return hook.program(programs.crasher(), "crasher")
