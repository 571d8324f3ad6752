"""The shipped completion scripts and man pages are what the argparse definitions generate
now (regenerate with ``python -m collectors.clidocs --write``), ``crashkit completion``
prints them, bash really completes with them, and the man pages render cleanly."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from collectors import cli, clidocs

REPO = Path(__file__).resolve().parents[1]
DATA = Path(clidocs.DATA)


def crashkit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collectors.cli", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=60, check=False)


def test_shipped_files_match_the_parsers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # not left behind: the list tests read COLUMNS
    stale = clidocs.stale()
    assert not stale, f"regenerate with: python -m collectors.clidocs --write ({stale})"


def test_completion_prints_the_shipped_scripts() -> None:
    res = crashkit("completion", "bash")
    assert res.returncode == 0
    assert res.stdout == "".join((DATA / rel).read_text() for rel in clidocs.SCRIPTS["bash"])
    assert crashkit("completion", "zsh").stdout.startswith("#compdef crashkit")
    assert crashkit("completion", "man").stdout.strip() == str(DATA / "man")
    assert crashkit("completion", "fish").returncode == 2


def complete(words: list[str], script: Path) -> list[str]:
    """What bash's programmable completion offers for the last of *words*."""
    line = " ".join(words)
    code = (f"source {script}\nCOMP_WORDS=({' '.join(repr(w) for w in words)})\n"
            f"COMP_CWORD={len(words) - 1}\nCOMP_LINE={line!r}\nCOMP_POINT={len(line)}\n"
            f"_shtab_{words[0]} {words[0]} {words[-1]!r} {words[-2]!r}\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n")
    res = subprocess.run(["bash", "--norc", "-c", code], capture_output=True, text=True, timeout=30, check=False)
    return res.stdout.split()


def test_bash_completes_commands_and_options() -> None:
    if not shutil.which("bash"):
        pytest.skip("needs bash")
    script = DATA / "completion" / "crashkit.bash"
    assert {c.name for c in cli.COMMANDS} <= set(complete(["crashkit", ""], script))
    assert complete(["crashkit", "li"], script) == ["list"]
    assert complete(["crashkit", "list", "--sin"], script) == ["--since"]
    assert "--no-pager" in complete(["crashkit", "list", "--no"], script)
    assert complete(["crashkit", "completion", "z"], script) == ["zsh"]
    assert "--debugger" in complete(["crashkit", "gdb", "--d"], script)
    assert complete(["coripper", "--ha"], DATA / "completion" / "coripper.bash") == ["--hash"]


def test_zsh_script_parses() -> None:
    if not shutil.which("zsh"):
        pytest.skip("needs zsh")
    for rel in clidocs.SCRIPTS["zsh"]:
        res = subprocess.run(["zsh", "-n", str(DATA / rel)], capture_output=True, text=True, check=False)
        assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("rel", clidocs.MAN_PAGES)
def test_man_pages_render_without_warnings(rel: str) -> None:
    if not shutil.which("groff"):
        pytest.skip("needs groff")
    res = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(DATA / rel)], capture_output=True,
                         text=True, check=False)
    assert res.returncode == 0 and res.stderr == "", res.stderr


def test_crashkit_page_has_every_command() -> None:
    page = (DATA / "man" / "man8" / "crashkit.8").read_text()
    for command in cli.COMMANDS:
        assert f".SS crashkit {command.name}" in page.replace("\\-", "-")


def test_the_files_are_package_data() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["collectors"]
    shipped = [str(p.relative_to(REPO / "collectors")) for p in DATA.rglob("*") if p.is_file()]
    assert shipped and all(any(fnmatch(rel, pat) for pat in patterns) for rel in shipped)
