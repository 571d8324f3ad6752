"""Shared plumbing of the atheris harnesses: work directory, seed corpora, the runner.

Seeds are built at start from real data (fixtures read in place, cores of a freshly built
``tests/programs/crasher.c``, ELF files of the host) into a work directory outside the
repository (``$CRASHKIT_FUZZ_WORK``, default ``/tmp/crashkit-fuzz``); nothing is copied into
the checkout. Crash reproducers go to ``<work>/<target>/artifacts/``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.append(str(REPO / "tests"))
from testlib import FIXTURES, PROGRAMS_SRC, gcore  # noqa: E402 - the tests' real-crash helpers

# libFuzzer defaults that make the contract "no hang, bounded memory" a crash when broken.
DEFAULT_FLAGS = ("-timeout=10", "-rss_limit_mb=3072")


def work_dir() -> Path:
    """The directory holding seeds, corpora, artifacts and built programs."""
    path = Path(os.environ.get("CRASHKIT_FUZZ_WORK", os.path.join(tempfile.gettempdir(), "crashkit-fuzz")))
    path.mkdir(parents=True, exist_ok=True)
    return path


def fixture_files(subdir: str, suffixes: tuple[str, ...] = ()) -> list[Path]:
    """Regular files below ``fixtures/subdir`` (optionally only those with a suffix), sorted."""
    root = FIXTURES / subdir
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and (not suffixes or p.name.endswith(suffixes)))


def build_program(name: str, flags: Iterable[str], source: str = "crasher.c") -> Path | None:
    """Compile ``tests/programs/<source>`` into the work directory once; None without gcc."""
    out = work_dir() / "bin" / name
    if out.exists():
        return out
    if shutil.which("gcc") is None:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    proc = subprocess.run(["gcc", *flags, str(PROGRAMS_SRC / source), "-o", str(tmp), "-pthread"],
                          capture_output=True, check=False)
    if proc.returncode != 0:
        return None
    tmp.rename(out)
    return out


def gcore_of(argv: list[str], name: str) -> Path | None:
    """A core of ``argv`` (a crasher in ``sleep`` mode) written by gdb's gcore, cached by name."""
    out = work_dir() / "cores" / name
    if out.exists():
        return out
    if shutil.which("gcore") is None:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        gcore(argv, out.with_name(name + ".tmp"), timeout=120).rename(out)
    except (AssertionError, OSError, subprocess.SubprocessError):
        return None
    return out


def real_cores() -> list[Path]:
    """gcore cores of crasher.c (one thread and three threads), built once per work dir."""
    exe = build_program("crasher-pie", ["-g", "-O1", "-fPIE", "-pie"])
    if exe is None:
        return []
    cores = []
    for name, extra in (("crasher-1t.core", []), ("crasher-3t.core", ["-t", "2"])):
        core = gcore_of([str(exe), "sleep", *extra], name)
        if core is not None:
            cores.append(core)
    return cores


def write_seeds(target: str, seeds: Iterable[bytes]) -> Path:
    """Write ``seeds`` (deduplicated, content-named) into ``<work>/<target>/seeds``."""
    seed_dir = work_dir() / target / "seeds"
    seed_dir.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        name = hashlib.sha1(seed).hexdigest()
        path = seed_dir / name
        if not path.exists():
            path.write_bytes(seed)
    return seed_dir


def run(target: str, test_one: Callable[[bytes], None], seeds: Callable[[], Iterable[bytes]],
        argv: list[str] | None = None, defaults: tuple[str, ...] = ()) -> None:
    """Run ``test_one`` under atheris/libFuzzer.

    ``argv`` is ``sys.argv``: libFuzzer flags and corpus directories. Without a corpus
    directory on the command line, ``<work>/<target>/corpus`` (new inputs) and the freshly
    built seed directory are used. Crash artifacts default to ``<work>/<target>/artifacts/``.
    ``defaults`` are the target's own libFuzzer flags, used unless given on the command line.
    """
    import atheris

    argv = list(sys.argv if argv is None else argv)
    flags = [a for a in argv[1:] if a.startswith("-")]
    dirs = [a for a in argv[1:] if not a.startswith("-")]
    replaying = any(os.path.isfile(d) for d in dirs)
    if not dirs:
        corpus = work_dir() / target / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        dirs = [str(corpus), str(write_seeds(target, seeds()))]
    if not any(f.startswith("-artifact_prefix=") for f in flags) and not replaying:
        artifacts = work_dir() / target / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        flags.append(f"-artifact_prefix={artifacts}/")
    for default in (*DEFAULT_FLAGS, *defaults):
        if not any(f.startswith(default.split("=")[0] + "=") for f in flags):
            flags.append(default)
    atheris.Setup([argv[0], *flags, *dirs], test_one)
    atheris.Fuzz()


def host_elf_files(limit: int) -> list[Path]:
    """Up to ``limit`` 64-bit ELF files of the host: libc, the dynamic loader, libgcc_s,
    libstdc++ and the crasher's friends first (their CFI has expressions and signal frames),
    then small programs of /usr/bin."""
    named = ("libc.so.6", "ld-linux-x86-64.so.2", "libgcc_s.so.1", "libstdc++.so.6", "libm.so.6",
             "libz.so.1", "ld-linux-aarch64.so.1")
    candidates = [root / name for root in (Path("/usr/lib/x86_64-linux-gnu"), Path("/lib64"),
                                           Path("/usr/lib/aarch64-linux-gnu")) for name in named]
    bindir = Path("/usr/bin")
    if bindir.is_dir():
        candidates += sorted(bindir.iterdir())
    out: list[Path] = []
    seen: set[Path] = set()
    for path in candidates:
        if len(out) >= limit:
            break
        try:
            real = path.resolve()
            if real in seen or not real.is_file() or real.stat().st_size > 8 << 20:
                continue
            with real.open("rb") as f:
                if f.read(5) == b"\x7fELF\x02":
                    out.append(real)
                    seen.add(real)
        except OSError:
            continue
    return out
