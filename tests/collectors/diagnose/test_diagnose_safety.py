"""Bad input and safety: a hanging command and a stuck section are cut at their limits and
recorded, an unreadable file is recorded, denied paths are never read, Ctrl-C leaves no
partial archive, and a run as nobody still produces a bundle that says what it could not read."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from diaghelpers import REPO, manifest, read_bundle

from collectors.diagnose.base import MiB, Options, Section, SectionContext, denied
from collectors.diagnose.bundle import Bundle
from collectors.diagnose.engine import run_sections
from collectors.diagnose.progress import Quiet


class Hang(Section):
    name = "hang"
    title = "a command that hangs"
    time_limit = 5.0
    budget = MiB

    def collect(self, ctx: SectionContext) -> None:
        ctx.add_command("sleep.txt", ["sleep", "60"], timeout=1.0)
        ctx.add_file("dir", "/etc")                 # a directory: EISDIR, recorded
        ctx.add_file("shadow", "/etc/shadow")       # never read
        ctx.add_file("missing", "/nonexistent/file")


class Stuck(Section):
    name = "stuck"
    title = "a section that never returns"
    time_limit = 1.0
    budget = MiB

    def collect(self, ctx: SectionContext) -> None:
        time.sleep(30)
        ctx.add_text("late.txt", "too late", "test")


@pytest.mark.slow
def test_limits_and_unreadable_items_are_recorded(tmp_path: Path) -> None:
    bundle = Bundle(str(tmp_path / "b.tar.gz"), "top", 4 * MiB)
    start = time.monotonic()
    runs, _ = run_sections(bundle, Options(since=0), Quiet(total=2), [Hang, Stuck])
    took = time.monotonic() - start
    bundle.commit()
    assert took < 5
    by = {r.name: r for r in runs}
    assert by["hang"].status == "ok" and by["stuck"].status == "timed out"
    errors = {e.path: e.error for e in bundle.entries}
    assert errors["hang/sleep.txt"] == "sleep: timed out after 1 s"
    assert errors["hang/dir"] == "Is a directory"
    assert errors["hang/shadow"] == "not collected: may hold secrets"
    assert errors["hang/missing"] == "No such file or directory"
    assert "stuck/late.txt" not in errors or errors["stuck/late.txt"] == "section time limit reached"


def test_denied_paths() -> None:
    for path in ("/etc/shadow", "/etc/gshadow", "/root/.ssh/id_ed25519", "/etc/ssh/ssh_host_rsa_key",
                 "/proc/1/environ", "/etc/pki/tls/private/server.key"):
        assert denied(path), path
    assert not denied("/etc/passwd") and not denied("/etc/ssh/ssh_host_rsa_key.pub")


def test_global_budget_truncates(tmp_path: Path) -> None:
    class Big(Section):
        name = "big"
        title = "more than the budget"
        budget = 10 * MiB

        def collect(self, ctx: SectionContext) -> None:
            ctx.add_bytes("a.txt", b"x" * 3000, "test")
            ctx.add_bytes("b.txt", b"y" * 3000, "test")

    bundle = Bundle(str(tmp_path / "b.tar.gz"), "top", 4000)
    run_sections(bundle, Options(since=0), Quiet(total=1), [Big])
    bundle.commit()
    sizes = {e.path: (e.size, e.truncated, e.error) for e in bundle.entries}
    assert sizes["big/a.txt"] == (3000, False, None)
    assert sizes["big/b.txt"] == (1000, True, "size budget reached")


DRIVER = textwrap.dedent("""
    import sys, time
    from collectors.diagnose import engine
    from collectors.diagnose.base import Section

    class Slow(Section):
        name = "slow"
        title = "slow"
        time_limit = 60.0
        def collect(self, ctx):
            time.sleep(60)

    real = engine.all_sections
    engine.all_sections = lambda: real() + [Slow]
    from collectors.cli import main
    sys.exit(main(["diagnose", "-o", sys.argv[1]]))
""")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_leaves_nothing(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "b.tar.zst"
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(out)], cwd=str(REPO), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()          # the first section finished: the archive is being written
    assert "crashkit diagnose: [1/" in line, line
    assert any(n.startswith(".b.tar.zst.tmp") for n in os.listdir(tmp_path))
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "crashkit: interrupted" in err and "Traceback" not in err
    assert os.listdir(tmp_path) == []


def test_as_nobody() -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop to nobody")
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(prefix="ckdiag", dir="/tmp"))  # pytest's tmp is root-only
    try:
        _as_nobody(tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _as_nobody(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chown(out, 65534, 65534)
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    res = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-m",
                          "collectors.cli", "diagnose", "-o", str(out / "n.tar.zst"), "--spool", str(spool)],
                         cwd=str(REPO), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert "permission denied" in res.stdout
    members = read_bundle(out / "n.tar.zst")
    m = manifest(members)
    assert m["euid"] == 65534
    denied_items = [i for i in m["items"] if i["error"] and "Permission denied" in i["error"]]
    assert denied_items
    assert "sections/host/proc_cpuinfo" in members and "report.html" in members


class Buggy(Section):
    name = "buggy"
    title = "a section with a bug of ours"
    budget = MiB

    def collect(self, ctx: SectionContext) -> None:
        ctx.add_text("before.txt", "collected before the bug", "test")
        raise ZeroDivisionError("a bug")


@pytest.mark.slow
def test_a_section_bug_fails_the_tests(tmp_path: Path) -> None:
    """Under CRASHKIT_STRICT (testlib sets it) the bug reaches the caller's thread, after the
    other sections finished."""
    bundle = Bundle(str(tmp_path / "b.tar.gz"), "top", 4 * MiB)
    with pytest.raises(ZeroDivisionError, match="a bug"):
        run_sections(bundle, Options(since=0), Quiet(total=2), [Buggy, Hang])
    bundle.abort()


def test_a_section_bug_is_recorded_for_a_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRASHKIT_STRICT", "0")
    bundle = Bundle(str(tmp_path / "b.tar.gz"), "top", 4 * MiB)
    runs, _ = run_sections(bundle, Options(since=0), Quiet(total=1), [Buggy])
    bundle.commit()
    assert [(r.name, r.status, r.error) for r in runs] == [("buggy", "error", "ZeroDivisionError: a bug")]
    assert "buggy/before.txt" in {e.path for e in bundle.entries}
