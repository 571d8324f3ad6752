"""Post-processing on a fresh machine's terms: the base interpreter has none of our
dependencies, only the install (editable or not) has them.

This machine's base interpreter may or may not have pyelftools and friends in its own
site-packages; a user's and CI's fresh machine has not. So the hook runs in a private mount
namespace in which every site-packages directory of the base interpreter is hidden under an
empty read-only tmpfs (the core_pattern helper is a small wrapper that sets that up and execs
the launcher). Whatever the hook starts inherits the namespace, so ``core_backtrace`` appears
only if post-processing imports from exactly the install the launcher names.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from testlib import REPO, Programs, require_core_pattern
from hookenv import HookEnv, element

from collectors.corehook import install

pytestmark = [pytest.mark.root, pytest.mark.slow]


def base_site_packages() -> list[str]:
    """The base interpreter's own site-packages directories (those of the interpreter behind
    this venv), as that interpreter reports them."""
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    out = subprocess.run([str(base), "-I", "-c", "import json, site; print(json.dumps(site.getsitepackages()))"],
                         capture_output=True, text=True, check=True)
    return [p for p in json.loads(out.stdout) if Path(p).is_dir()]


HIDE_AND_EXEC = """#!/bin/sh
# Hide the base interpreter's site-packages, then run the real hook (argv from the kernel).
exec unshare --mount --propagation private /bin/sh -c '
for d in {dirs}; do mount -t tmpfs -o ro,size=4k,mode=0755 crashkit-hidden "$d" || exit 1; done
exec "$0" "$@"' {launcher} "$@"
"""


def hidden_site_hook(env: HookEnv, launcher_source: str) -> HookEnv:
    """Point *env* at a launcher made from *launcher_source*, run behind the hiding wrapper."""
    require_core_pattern()
    if shutil.which("unshare") is None:
        pytest.skip("needs util-linux unshare")
    env.launcher.write_text(launcher_source)
    env.launcher.chmod(0o755)
    dirs = " ".join(f"'{d}'" for d in base_site_packages())
    wrapper = env.base / "w"
    wrapper.write_text(HIDE_AND_EXEC.format(dirs=dirs or "", launcher=env.launcher))
    wrapper.chmod(0o755)
    env.pattern = install.pattern_for(str(wrapper))
    assert len(env.pattern) <= install.CORENAME_MAX
    env.configure(postprocess=True)
    return env


def assert_unwound(env: HookEnv, crasher: Path) -> None:
    env.crash([str(crasher), "segv"])
    [d] = env.dirs()
    env.wait_element(d, "crash_function", timeout=90)  # written after core_backtrace
    assert element(d, "crash_function") == "crash_write_null"
    frames = json.loads(element(d, "core_backtrace"))["stacktrace"][0]["frames"]
    assert frames[0]["function_name"] == "crash_write_null"


@pytest.fixture
def env() -> Iterator[HookEnv]:
    require_core_pattern()
    hook_env = HookEnv()
    yield hook_env
    hook_env.cleanup()


def test_editable_install_postprocesses_without_base_site_packages(env: HookEnv, programs: Programs) -> None:
    """The install the tests run from (the README's ``pip install -e``): package root is the
    checkout, the dependencies are in the venv's site-packages only."""
    hidden_site_hook(env, install.launcher_text(env.paths.hook_config))
    assert_unwound(env, env.program(programs.crasher()))


@pytest.fixture(scope="module")
def built_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What ``pip install .`` lays down for our packages: their files in a directory of their
    own (the dependencies stay in the venv's site-packages, as they would beside a plain
    install). Copied, not built, so the checkout gets no build/ or egg-info."""
    target = tmp_path_factory.mktemp("site")
    target.chmod(0o755)
    for package in ("coripper", "collectors", "reporter"):
        shutil.copytree(REPO / package, target / package, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_plain_install_postprocesses_without_base_site_packages(env: HookEnv, programs: Programs,
                                                                built_install: Path) -> None:
    """A non-editable install: our packages come from the install's own directory."""
    hidden_site_hook(env, install.launcher_text(env.paths.hook_config, root=str(built_install)))
    assert_unwound(env, env.program(programs.crasher()))
    assert str(built_install) in env.launcher.read_text()
