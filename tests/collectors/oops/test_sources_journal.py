"""The journal source against real journals: one written at test time with
systemd-journal-remote (two boots), and the host's journal when journald runs here."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from collectors.oops.sources import JournalSource, read_boot_id

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
OLD_BOOT = "0123456789abcdef0123456789abcdef"


def _entry(boot: str, usec: int, msg: str, i: int) -> str:
    return (f"__CURSOR=s=0;i={i}\n__REALTIME_TIMESTAMP={usec}\n__MONOTONIC_TIMESTAMP={i * 1000}\n"
            f"_BOOT_ID={boot}\n_TRANSPORT=kernel\nPRIORITY=4\nSYSLOG_IDENTIFIER=kernel\n"
            f"_HOSTNAME=testhost\nMESSAGE={msg}\n")


def make_journal(path: Path, entries: list[tuple[str, str]]) -> None:
    """Write ``(boot id, message)`` kernel entries into a new journal file at ``path``."""
    if not Path(JOURNAL_REMOTE).exists() or shutil.which("journalctl") is None:
        pytest.skip("needs systemd-journal-remote (apt install systemd-journal-remote) and journalctl")
    now = int(time.time() * 1e6) - 10_000_000
    export = "\n".join(_entry(b, now + i, m, i + 1) for i, (b, m) in enumerate(entries)) + "\n"
    subprocess.run([JOURNAL_REMOTE, "-o", str(path), "-"], input=export.encode(), check=True,
                   capture_output=True)


def _units(src: JournalSource, state: dict) -> list[tuple[str, list[str]]]:
    out = []
    for unit in src.units(state):
        out.append((unit.origin, list(unit.lines)))
        unit.finish()
    return out


def test_journal_file_per_boot_with_cursors(tmp_path: Path) -> None:
    boot = read_boot_id() or "fedcba9876543210fedcba9876543210"
    journal = tmp_path / "k.journal"
    make_journal(journal, [(OLD_BOOT, "old boot: first"), (OLD_BOOT, "old boot: second"),
                           (boot, "this boot: one"), (boot, "this boot: two")])
    src = JournalSource(extra_args=("--file", str(journal)))
    assert src.exists()
    assert [b for _i, b in src.boots()] == [OLD_BOOT, boot]
    state: dict = {}
    units = _units(src, state)
    assert [o for o, _ in units] == [f"journal boot {OLD_BOOT}", f"journal boot {boot}"]
    messages = [[line.split("kernel: ", 1)[1] for line in lines] for _, lines in units]
    assert messages == [["old boot: first", "old boot: second"], ["this boot: one", "this boot: two"]]
    # short-precise lines: "Mon DD HH:MM:SS.uuuuuu host kernel: text"
    assert " testhost kernel: " in units[0][1][0]
    assert set(state["boots"]) == {OLD_BOOT, boot}
    # Second run: nothing after the cursors.
    assert [lines for _, lines in _units(src, state)] == [[], []]
    # A cursor on the first entry of the old boot resumes right after it.
    res = subprocess.run(["journalctl", "--file", str(journal), "-b", OLD_BOOT, "-o", "json",
                          "--no-pager"], capture_output=True, text=True, check=True)
    state["boots"][OLD_BOOT] = json.loads(res.stdout.splitlines()[0])["__CURSOR"]
    units = _units(src, state)
    assert [line.split("kernel: ", 1)[1] for line in units[0][1]] == ["old boot: second"]
    assert units[1][1] == []


def test_broken_journal_file_is_no_source(tmp_path: Path) -> None:
    if shutil.which("journalctl") is None:
        pytest.skip("journalctl not installed")
    bad = tmp_path / "bad.journal"
    bad.write_bytes(b"LPKSHHRH" + b"\x00" * 100)
    src = JournalSource(extra_args=("--file", str(bad)))
    assert not src.exists()
    assert _units(src, {}) == []


def test_host_journal_when_journald_runs() -> None:
    src = JournalSource()
    if not src.exists():
        pytest.skip("no systemd journal on this host (journald is not running here)")
    state: dict = {}
    units = _units(src, state)
    assert units and any(lines for _, lines in units)
    assert set(state["boots"]) == {b for _i, b in src.boots()[-src.max_boots:]}
