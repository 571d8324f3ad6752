"""The ``coripper`` command: outputs, exit codes, one-line errors, --info --json, --zstd."""

from __future__ import annotations

import blake3
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


# --- --info --json against independent tools -------------------------------------------

ENV = {"LC_ALL": "C", "PATH": "/usr/bin:/bin"}


def _eu_unstrip_build_ids(core: Path) -> dict[int, str]:
    """{module start: build-id} from ``eu-unstrip -n --core`` (lines ``0xSTART+0xSIZE ID@ADDR ...``)."""
    out = subprocess.run(["eu-unstrip", "-n", "--core", str(core)], capture_output=True,
                         text=True, env=ENV, timeout=60).stdout
    ids = {}
    for line in out.splitlines():
        start, rest = line.split("+", 1)
        bid = rest.split()[1].split("@", 1)[0]
        if bid != "-":
            ids[int(start, 16)] = bid
    return ids


def test_info_json_modules_match_eu_unstrip(cores) -> None:  # type: ignore[no-untyped-def]
    """Module start and build-id of every module (the vdso included) equal eu-unstrip's on the
    original core; thread ids and pcs equal eu-stack's frame #0."""
    core = cores.standard("threads").core
    info = json.loads(coripper("--info", "--json", str(core)).stdout)
    assert {m["start"]: m["build_id"] for m in info["modules"]} == _eu_unstrip_build_ids(core)
    assert all(m["start"] < m["end"] for m in info["modules"])
    assert any(m["path"] == "[vdso]" for m in info["modules"])
    out = subprocess.run(["eu-stack", "--core", str(core), "-n", "1"], capture_output=True,
                         text=True, env=ENV, timeout=60).stdout
    pcs, tid = {}, None
    for line in out.splitlines():
        if line.startswith("TID "):
            tid = int(line[4:].rstrip(":"))
        elif line.startswith("#0 ") and tid is not None:
            pcs[tid] = int(line.split()[1], 16)
    assert {t["tid"]: t["pc"] for t in info["threads"]} == pcs
    assert all(t["sp"] for t in info["threads"])
    kept_total = sum(k["size"] for k in info["kept"])
    assert kept_total < info["bytes_out"] < info["bytes_in"]


# --- the provenance note --------------------------------------------------------------------

def _readelf_crashkit_note(path: Path) -> tuple[int, bytes]:
    """(declared size, descriptor bytes) of the CRASHKIT note as ``readelf -nW`` prints it."""
    out = subprocess.run(["readelf", "-nW", str(path)], capture_output=True, text=True,
                         env=ENV).stdout
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == "CRASHKIT":
            assert "0x50524f56" in line
            desc = line.split("description data:", 1)[1].split()
            return int(parts[1], 16), bytes(int(b, 16) for b in desc)
    raise AssertionError(f"readelf -n shows no CRASHKIT note:\n{out[-2000:]}")


@pytest.mark.parametrize("mode", ["file", "stream"])
def test_provenance_note_readelf_and_parser(core: Path, tmp_path: Path, mode: str) -> None:
    from coripper.minimizer.elfcore import PT_NOTE, parse_elf_header, parse_program_headers
    from coripper.minimizer.provenance import find_provenance

    out = tmp_path / "small"
    if mode == "file":
        assert coripper(str(core), "-o", str(out)).returncode == 0
    else:
        with open(core, "rb") as f:
            r = coripper("-", stdin=f)
        assert r.returncode == 0
        out.write_bytes(r.stdout)
    size, desc = _readelf_crashkit_note(out)
    assert size == len(desc) > 100
    from_readelf = json.loads(desc)
    # our parser, over every PT_NOTE of the output
    data = out.read_bytes()
    hdr = parse_elf_header(data)
    phdrs = parse_program_headers(data[hdr.e_phoff:], hdr.e_phnum)
    found = [find_provenance(data[p.p_offset:p.p_offset + p.p_filesz])
             for p in phdrs if p.p_type == PT_NOTE]
    ours = [f for f in found if f is not None]
    assert ours == [from_readelf]
    prov = from_readelf
    assert prov["tool"] == "coripper" and prov["mode"] == mode
    assert prov["source"]["size"] == core.stat().st_size
    if mode == "stream":
        assert prov["source"]["hash"] == "blake3"
        assert prov["source"]["digest"] == blake3.blake3(core.read_bytes()).hexdigest()
    # the kept ranges it lists are exactly the output's PT_LOADs, as readelf lists them
    segs = subprocess.run(["readelf", "-lW", str(out)], capture_output=True, text=True,
                          env=ENV).stdout
    loads = [(int(p[2], 16), int(p[2], 16) + int(p[5], 16))
             for p in (line.split() for line in segs.splitlines()) if p and p[0] == "LOAD"]
    assert [(int(k["start"], 16), int(k["end"], 16)) for k in prov["kept"]] == loads
    assert all(k["reason"] for k in prov["kept"])
