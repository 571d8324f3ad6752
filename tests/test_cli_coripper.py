"""``coripper CORE > OUT`` starts fast (the figures are bench/coripper_start.py's; this checks what
keeps them): the common forms are parsed without argparse, exactly as argparse parses them, and
the import closure of file mode holds nothing that only another path needs (no argparse, no
decompressor, no tempfile/shutil, no hashing, no threads, no dataclasses, no typing), with
``-o OUT`` too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coripper import cli

REPO = Path(__file__).resolve().parents[1]
STORED_CORE = REPO / "tests" / "programs" / "cores" / "static-abort.core.zst"

#: Modules only another path (or nothing) needs; none may load for ``coripper CORE > OUT``.
NOT_FOR_FILE_MODE = {"argparse", "gettext", "locale", "shutil", "tempfile", "zstandard", "lzma", "bz2",
                     "gzip", "zlib", "lz4", "hashlib", "_hashlib", "blake3", "threading", "queue",
                     "dataclasses", "inspect", "typing", "elftools", "logging", "subprocess",
                     "coripper.minimizer.info", "coripper.unwinder"}


@pytest.mark.parametrize("argv", [
    ["core"], ["-"], ["core", "-o", "out"], ["core", "--output", "out"], ["-o", "out", "core"],
    ["--output", "out", "-"], ["/a path/with spaces"], ["core", "-o", "/dev/null"],
])
def test_quick_forms_parse_as_argparse_does(argv: list[str]) -> None:
    quick = cli.quick_args(argv)
    assert quick is not None, argv
    assert vars(quick) == vars(cli.build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", [
    [], ["--info", "core"], ["core", "--zstd"], ["core", "-o"], ["-o", "out"], ["--help"],
    ["core", "-o", "-"], ["-x"], ["core", "extra"], ["core", "-o", "out", "--debug"],
    ["--output=out", "core"], ["core", "-ofile"], ["-5"],
])
def test_other_forms_go_to_argparse(argv: list[str]) -> None:
    assert cli.quick_args(argv) is None


def _modules_of_a_run(core: Path, out: Path, *options: str) -> set[str]:
    code = ("import sys, json\nfrom coripper.cli import main\nrc = main(sys.argv[1:])\n"
            "sys.stdout.flush()\n"
            "sys.stderr.write('\\nMODULES ' + json.dumps(sorted(sys.modules)) + '\\n')\n"
            "sys.exit(rc)\n")
    with open(out, "wb") if not options else open(os.devnull, "wb") as f:
        res = subprocess.run([sys.executable, "-c", code, str(core), *options], stdout=f,
                             stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    line = next(line for line in res.stderr.splitlines() if line.startswith("MODULES "))
    return set(json.loads(line[len("MODULES "):])) - {"json"} - {"json.decoder", "json.scanner"}


@pytest.mark.parametrize("to_file", [False, True], ids=["stdout", "-o OUT"])
def test_file_mode_loads_only_what_it_uses(tmp_path: Path, to_file: bool) -> None:
    zstandard = pytest.importorskip("zstandard")
    core = tmp_path / "core"
    with open(STORED_CORE, "rb") as src, open(core, "wb") as dst:
        zstandard.ZstdDecompressor().copy_stream(src, dst)
    out = tmp_path / "out"
    mods = _modules_of_a_run(core, out, *(["-o", str(out)] if to_file else []))
    loaded = {m for m in mods if m in NOT_FOR_FILE_MODE or m.split(".")[0] in NOT_FOR_FILE_MODE
              or any(m.startswith(p + ".") for p in NOT_FOR_FILE_MODE)}
    assert not loaded, sorted(loaded)
    with open(out, "rb") as f:
        assert f.read(4) == b"\x7fELF"
    if to_file:  # made as tempfile.mkstemp makes it, and renamed into place
        assert out.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".coripper-tmp")] == []
