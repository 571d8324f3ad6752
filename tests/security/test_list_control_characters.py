"""Issue 15 §6: ``crashkit list`` and ``info`` escape what is not printable.

Element text reached the terminal verbatim: a C1 control such as U+009B (CSI, the one-byte
form of ``ESC [``) in a ``reason`` is a terminal escape sequence. Text output now shows every
non-printable character as a backslash escape; JSON output keeps the real value, written
with JSON's ``\\uXXXX`` escapes so that its bytes are plain ASCII.
"""

from __future__ import annotations

import json
from pathlib import Path

from secenv import crashkit, problem_dir

CSI = "\u009b"
# C1 CSI, a right-to-left override, DEL, NEL (a C1 line break) and a zero-width space.
HOSTILE = f"evil {CSI}2J{CSI}31m red \u202etxt.exe\x7f end\u0085x\u200b"
DIR_NAME = f"ccpp-{CSI}1;1H-name"


def assert_printable(text: str) -> None:
    """Only printable characters, spaces and line ends (the layout's own) are left."""
    bad = sorted({f"U+{ord(c):04X}" for c in text if not (c.isprintable() or c == "\n")})
    assert not bad, f"non-printable characters reach the terminal: {bad}"


def hostile_spool(tmp_path: Path) -> tuple[Path, Path]:
    spool = tmp_path / "spool"
    d = problem_dir(spool, DIR_NAME, executable=f"/usr/bin/x{CSI}0m",
                    comment=f"line one\r{CSI}2Koverwritten\nline\ttwo {CSI}?25l\n")
    (d / "reason").write_text(HOSTILE)
    (d / f"note{CSI}").write_text(f"named {CSI}")  # element names may hold C1 too
    return spool, d


def test_list_text_escapes_control_characters(tmp_path: Path) -> None:
    spool, _ = hostile_spool(tmp_path)
    res = crashkit("list", "--spool", str(spool))
    assert res.returncode == 0, res.stderr.decode()
    out = res.stdout.decode()
    assert_printable(out)
    assert "\\x9b2J\\x9b31m" in out  # escaped, not dropped
    assert "ccpp-\\x9b1;1H-name" in out


def test_info_text_escapes_control_characters(tmp_path: Path) -> None:
    _, d = hostile_spool(tmp_path)
    res = crashkit("info", str(d))
    assert res.returncode == 0, res.stderr.decode()
    out = res.stdout.decode()
    assert_printable(out.replace("\t", " "))  # a tab inside a value is harmless and kept
    lines = out.splitlines()
    assert "reason: evil \\x9b2J\\x9b31m red \\u202etxt.exe\\x7f end\\x85x\\u200b" in lines
    assert "    line one\\r\\x9b2Koverwritten" in lines
    assert "note\\x9b: named \\x9b" in lines
    assert f"directory: {d}".replace(CSI, "\\x9b") in lines


def test_json_keeps_the_real_values_as_ascii(tmp_path: Path) -> None:
    spool, d = hostile_spool(tmp_path)
    for args in (["list", "--spool", str(spool), "--json"], ["info", str(d), "--json"]):
        res = crashkit(*args)
        assert res.returncode == 0, res.stderr.decode()
        assert res.stdout.isascii()  # \u009b, never the raw character
        assert_printable(res.stdout.decode())
    listed = json.loads(crashkit("list", "--spool", str(spool), "--json").stdout)
    assert listed[0]["reason"] == HOSTILE and listed[0]["directory"] == str(d)
    info = json.loads(crashkit("info", str(d), "--json").stdout)
    assert info["elements"]["reason"] == HOSTILE
    assert info["elements"][f"note{CSI}"] == f"named {CSI}"
