"""Compressed cores (systemd-coredump's ``.zst``/``.xz``/``.lz4``, gzip, bzip2): coripper and
``crashkit backtrace`` decompress them on the fly, in one pass.

The compressed files are made by the real command-line tools (zstd, xz, lz4, gzip, bzip2),
not by the libraries we read them with. The oracle is the uncompressed core: the minimized
core must equal file mode's on it (apart from the provenance note), the note must name the
compression and hold the BLAKE3 of the *decompressed* core, and the backtrace JSON must be
identical.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import blake3
import pytest
from test_stream import _without_provenance

from coripper.minimizer.stream import minimize_file

TOOLS = {"zstd": ["zstd", "-q", "-c"], "xz": ["xz", "-0", "-c"], "lz4": ["lz4", "-q", "-c"],
         "gzip": ["gzip", "-1", "-c"], "bzip2": ["bzip2", "-1", "-c"]}
CORIPPER = [sys.executable, "-m", "coripper.cli"]
CRASHKIT = [sys.executable, "-m", "collectors.cli"]


def _compress(core: Path, kind: str, out_dir: Path) -> Path:
    if shutil.which(TOOLS[kind][0]) is None:
        pytest.skip(f"needs the {TOOLS[kind][0]} command")
    out = out_dir / f"{core.name}.{kind}"
    with open(core, "rb") as src, open(out, "wb") as dst:
        subprocess.run(TOOLS[kind], stdin=src, stdout=dst, check=True)
    return out


@pytest.fixture(scope="module")
def reference(cores, tmp_path_factory):  # type: ignore[no-untyped-def]
    core = cores.standard("threads").core
    out = tmp_path_factory.mktemp("ref") / "ref.core"
    with open(core, "rb") as src, open(out, "wb") as dst:
        minimize_file(src, dst)
    return core, _without_provenance(out.read_bytes())[0]


@pytest.mark.slow
@pytest.mark.parametrize("via", ["path", "pipe"])
@pytest.mark.parametrize("kind", list(TOOLS))
def test_compressed_core_minimizes_like_the_plain_one(reference, tmp_path: Path, kind: str,
                                                     via: str) -> None:
    core, expected = reference
    packed = _compress(core, kind, tmp_path)
    out = tmp_path / "small.core"
    if via == "path":
        run = subprocess.run([*CORIPPER, str(packed), "-o", str(out)], capture_output=True,
                             text=True)
    else:
        with open(packed, "rb") as f:
            cat = subprocess.Popen(["cat"], stdin=f, stdout=subprocess.PIPE)
            run = subprocess.run([*CORIPPER, "-", "-o", str(out)], stdin=cat.stdout,
                                 capture_output=True, text=True)
            assert cat.stdout is not None
            cat.stdout.close()
            cat.wait()
    assert run.returncode == 0, run.stderr
    body, prov = _without_provenance(out.read_bytes())
    assert body == expected
    assert prov["mode"] == "stream"
    assert prov["source"]["compression"] == kind
    assert prov["source"]["size"] == core.stat().st_size
    assert prov["source"]["digest"] == blake3.blake3(core.read_bytes()).hexdigest()


def test_info_reads_a_compressed_core(reference, tmp_path: Path) -> None:
    core, _ = reference
    packed = _compress(core, "zstd", tmp_path)
    plain = json.loads(subprocess.run([*CORIPPER, "--info", "--json", str(core)],
                                      capture_output=True, text=True, check=True).stdout)
    packed_info = json.loads(subprocess.run([*CORIPPER, "--info", "--json", str(packed)],
                                            capture_output=True, text=True, check=True).stdout)
    for key in ("threads", "modules", "kept", "bytes_in", "crash_site"):
        assert packed_info[key] == plain[key], key


@pytest.mark.parametrize("kind", ["zstd", "xz", "lz4"])
def test_backtrace_of_a_compressed_core_is_identical(reference, tmp_path: Path, kind: str) -> None:
    core, _ = reference
    packed = _compress(core, kind, tmp_path)
    plain = subprocess.run([*CRASHKIT, "backtrace", "--json", str(core)], capture_output=True,
                           text=True)
    assert plain.returncode == 0, plain.stderr
    got = subprocess.run([*CRASHKIT, "backtrace", "--json", str(packed)], capture_output=True,
                         text=True)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == json.loads(plain.stdout)
    assert json.loads(got.stdout)["core_backtrace"]["stacktrace"]


def test_truncated_compressed_core_gives_a_best_effort_core(reference, tmp_path: Path) -> None:
    core, _ = reference
    packed = _compress(core, "zstd", tmp_path)
    cut = tmp_path / "cut.zst"
    data = packed.read_bytes()
    cut.write_bytes(data[:len(data) * 2 // 3])
    out = tmp_path / "small.core"
    run = subprocess.run([*CORIPPER, str(cut), "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 1, run.stderr          # best effort, as for a cut-off plain core
    assert "coripper: warning:" in run.stderr
    assert "Traceback" not in run.stderr
    info = subprocess.run([*CORIPPER, "--info", "--json", str(out)], capture_output=True,
                          text=True)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["threads"]        # the notes came first: threads survive


@pytest.mark.parametrize("kind", list(TOOLS))
def test_garbage_after_a_compression_magic_is_one_line(tmp_path: Path, kind: str) -> None:
    from coripper.minimizer.compressed import MAGIC
    bad = tmp_path / f"bad.{kind}"
    bad.write_bytes(MAGIC[kind] + bytes(range(256)) * 64)
    for argv in ([*CORIPPER, str(bad), "-o", str(tmp_path / "o")],
                 [*CRASHKIT, "backtrace", str(bad)]):
        run = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert run.returncode == 2, (argv, run.stderr)
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in run.stderr, lines
    assert not (tmp_path / "o").exists()
