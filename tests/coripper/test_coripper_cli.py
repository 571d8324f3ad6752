"""The ``coripper`` command: outputs, exit codes, one-line errors, --info --json, --zstd."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

pytestmark = pytest.mark.root


def coripper(*args: str, stdin=None, **kw) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    return subprocess.run([sys.executable, "-m", "coripper.cli", *args], capture_output=True,
                          stdin=stdin, timeout=120, **kw)


@pytest.fixture(scope="module")
def core(cores) -> Path:  # type: ignore[no-untyped-def]
    return cores.standard("threads").core


def test_stdout_output_and_o_are_identical(core: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.core"
    r1 = coripper(str(core))
    r2 = coripper(str(core), "-o", str(out))
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr
    assert r1.stdout[:4] == b"\x7fELF"
    assert r1.stdout == out.read_bytes()
    assert not list(tmp_path.glob("*coripper-tmp"))


def test_stdin_stream(core: Path) -> None:
    with open(core, "rb") as f:
        r = coripper("-", stdin=f)
    assert r.returncode == 0, r.stderr
    assert r.stdout[:4] == b"\x7fELF"


def test_zstd_output_decompresses_to_the_same_core(core: Path, tmp_path: Path) -> None:
    plain = coripper(str(core)).stdout
    r = coripper(str(core), "--zstd", "-o", str(tmp_path / "c.zst"))
    assert r.returncode == 0, r.stderr
    data = zstandard.ZstdDecompressor().stream_reader(open(tmp_path / "c.zst", "rb")).read()
    assert data == plain


def test_info_json_keys(core: Path) -> None:
    r = coripper("--info", "--json", str(core))
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["bytes_in"] == core.stat().st_size and 0 < info["bytes_out"] < info["bytes_in"]
    assert len(info["threads"]) == 10
    assert set(info["threads"][0]) >= {"tid", "signal", "pc", "sp"}
    assert info["threads"][0]["signal"] == 11
    mods = {m["path"].rsplit("/", 1)[-1]: m for m in info["modules"]}
    assert "libc.so.6" in mods and set(mods["libc.so.6"]) >= {"path", "start", "end", "build_id"}
    assert all(len(m["build_id"]) == 40 for m in mods.values())
    assert all({"start", "end", "reason"} <= set(k) for k in info["kept"])
    assert any(k["reason"].startswith("stack tid") for k in info["kept"])


def test_info_text(core: Path) -> None:
    r = coripper("--info", str(core))
    assert r.returncode == 0
    assert b"threads (10" in r.stdout and b"libc.so.6" in r.stdout


@pytest.mark.parametrize("args,needle", [
    (["/nonexistent"], b"/nonexistent"),
    (["--max-stack", "lots", "x"], b"bad size"),
    (["--keep", "5-1", "x"], b"empty range"),
])
def test_errors_are_one_line_exit_2(args: list[str], needle: bytes) -> None:
    r = coripper(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert needle in r.stderr and b"Traceback" not in r.stderr
    assert lines[-1].startswith(b"coripper: error:") or lines[-1].startswith(b"usage:") is False


def test_not_a_core_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"hello world" * 100)
    r = coripper(str(bad), "-o", str(tmp_path / "out"))
    assert r.returncode == 2
    assert r.stderr.decode().strip().count("\n") == 0
    assert r.stderr.startswith(b"coripper: error: not an ELF file")
    assert not (tmp_path / "out").exists()


def test_truncated_core_exit_1_best_effort(core: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut"
    cut.write_bytes(core.read_bytes()[: core.stat().st_size // 2])
    r = coripper(str(cut), "-o", str(tmp_path / "o"))
    assert r.returncode == 1
    assert b"coripper: warning:" in r.stderr
    assert (tmp_path / "o").read_bytes()[:4] == b"\x7fELF"


def test_debug_shows_traceback() -> None:
    r = coripper("--debug", "/nonexistent")
    assert r.returncode != 0 and b"Traceback" in r.stderr
