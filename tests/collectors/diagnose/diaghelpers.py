"""Shared pieces of the diagnose tests: a spool with a real crash (through a private hook
installation and the real kernel), a hand-made hostile problem directory and a corrupt one;
reading a bundle back."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import zstandard

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "collectors" / "corehook"))

EVIL = "<script>window.__pwned = 1</script><img src=x onerror=window.__pwned=2> killed by SIGSEGV"
PEM = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
       "-----END OPENSSH PRIVATE KEY-----\n")


def add_hostile_dir(spool: Path, core_backtrace: str | None) -> str:
    """A CCpp directory whose reason is markup, with secrets in elements that must not leak."""
    from reporter.dumpdir import DumpDir

    dd = DumpDir.create(str(spool), "ccpp-2026-12-01-10:00:00.1-4242")
    dd.save_text("type", "CCpp")
    dd.save_text("executable", "/usr/bin/evil")
    dd.save_text("reason", EVIL)
    dd.save_text("signal", "11")
    dd.save_text("environ", "HOME=/root\nAWS_SECRET_ACCESS_KEY=envsecret123\n")
    dd.save_text("cmdline", "/usr/bin/evil --connect 10.1.2.3 password=hunter2")
    dd.save_text("backtrace_note", PEM)
    if core_backtrace:
        dd.save_text("core_backtrace", core_backtrace)
    dd.set_time(1_796_000_000)
    dd.save_int("count", 3)
    path = dd.commit()
    dd.close()
    return path


def add_corrupt_dir(spool: Path) -> None:
    bad = spool / "ccpp-corrupt"
    bad.mkdir()
    (bad / "type").write_text("CCpp")
    (bad / "reason").write_text("no time element")


def crashkit(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collectors.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=str(REPO))


def read_bundle(path: Path) -> dict[str, bytes]:
    """Every member of a .tar.zst / .tar.gz bundle, by name below the top directory."""
    if path.name.endswith(".zst"):
        with open(path, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as z:
            tf = tarfile.open(fileobj=z, mode="r|")
            out = {m.name.split("/", 1)[1]: tf.extractfile(m).read() for m in tf if m.isfile()}  # type: ignore[union-attr]
    else:
        with tarfile.open(path, "r:gz") as tf:
            out = {m.name.split("/", 1)[1]: tf.extractfile(m).read() for m in tf if m.isfile()}  # type: ignore[union-attr]
    return out


def manifest(members: dict[str, bytes]) -> dict[str, Any]:
    return json.loads(members["manifest.json"])
