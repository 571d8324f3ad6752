"""``crashkit`` loads only the code of the command it runs (the start-up figures are
bench/cli_startup.py's; this checks the import closure that keeps them): ``--help`` none of
the command modules, ``list``/``info`` the spool reader and nothing heavy (no json for a
table, no dataclasses, logging, subprocess, shutil, the unwinder, the oops parser or the
service)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from cli_startup import make_spool  # noqa: E402

HEAVY = {"json", "dataclasses", "inspect", "logging", "subprocess", "typing", "elftools", "zstandard",
         "shutil",  # argparse's help formatter imports it for the terminal width (and zlib, bz2, lzma)
         "requests", "coripper.unwinder.backtrace", "coripper.minimizer.stream", "collectors.oops.parse",
         "reporter.server.app", "tomllib", "sqlalchemy", "fastapi"}


def modules_after(*argv: str, env: dict[str, str] | None = None) -> set[str]:
    code = ("import sys, json\nfrom collectors.cli import main\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit:\n    pass\nsys.stdout.flush()\n"
            "sys.stderr.write('\\nMODULES ' + json.dumps(sorted(sys.modules)) + '\\n')\n")
    res = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env,
                         timeout=60, check=False)
    line = next(line for line in res.stderr.splitlines() if line.startswith("MODULES "))
    mods = set(json.loads(line[len("MODULES "):]))
    mods.discard("json")  # the probe's own
    mods -= {m for m in mods if m.startswith("json.")}
    return mods


def ours(mods: set[str]) -> set[str]:
    return {m for m in mods if m.split(".")[0] in ("collectors", "reporter", "coripper")}


def test_help_imports_no_command_module() -> None:
    mods = modules_after("--help")
    assert ours(mods) == {"collectors", "collectors.cli"}
    assert "shutil" not in mods


@pytest.fixture(scope="module")
def spool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spool = tmp_path_factory.mktemp("startup") / "spool"
    make_spool(spool, 12)
    return spool


@pytest.mark.parametrize("argv", [["list"], ["info", "prog3"], ["list", "-r", "--since", "-1y", "sleep"]])
def test_list_and_info_load_the_spool_reader_only(spool: Path, argv: list[str]) -> None:
    import os

    env = dict(os.environ, CRASHKIT_SPOOL=str(spool))
    mods = modules_after(*argv, env=env)
    assert not HEAVY & mods, sorted(HEAVY & mods)
    assert {m.split(".")[0] for m in ours(mods)} == {"collectors", "reporter"}
    assert ours(mods) - {"collectors", "collectors.cli"} <= {
        "reporter", "reporter.cli", "reporter.listing", "reporter.match", "reporter.display",
        "reporter.pager", "reporter.dumpdir", "reporter.dirfs", "reporter.dirlock", "reporter.elementio",
        "reporter.elements", "reporter.errors", "reporter.spool", "reporter.reported_to"}
