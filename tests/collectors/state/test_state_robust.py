"""Tools that hang or print garbage, missing tools, unreadable cgroup files and hostile names:
every case ends in a status with a reason, valid JSON and an escaped table, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from statehelpers import fake_tool

from collectors.state.base import Options
from collectors.state.collect import collect_state
from collectors.state.model import TECHS
from collectors.state.plugins.libvirt import Libvirt

REPO = Path(__file__).resolve().parents[3]


def _cli(*args: str, env: dict[str, str] | None = None, user: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "collectors.cli", "state", *args]
    if user:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


@pytest.mark.slow
def test_a_hanging_tool_is_cut_at_its_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / "bin"
    fake_tool(bindir, "virsh", "sleep 60\n")
    fake_tool(bindir, "vzlist", "sleep 60\n")
    monkeypatch.setattr(Libvirt, "use_binding", False)   # virsh, even where libvirt-python is
    start = time.monotonic()
    results = collect_state(Options(libvirt_uri="test:///default", path=str(bindir), timeout=0.5),
                            ["libvirt", "openvz"])
    assert time.monotonic() - start < 5
    assert (results["libvirt"].status, results["libvirt"].error) == ("error", "virsh: timed out after 0.5 s")
    assert (results["openvz"].status, results["openvz"].error) == ("error", "vzlist: timed out after 0.5 s")
    # the same through the command, with the fake tool first on PATH
    start = time.monotonic()
    proc = _cli("--json", "--tech", "openvz", "--timeout", "0.5",
                env={"PATH": f"{bindir}:{os.environ['PATH']}"})
    assert time.monotonic() - start < 10
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["openvz"] == {"status": "error", "instances": [],
                                                 "error": "vzlist: timed out after 0.5 s"}


def test_malformed_json_from_a_tool_is_an_error(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    fake_tool(bindir, "podman", 'echo \'[{"Id": "abc", "Names": ["x"]\'\n')
    result = collect_state(Options(path=str(bindir)), ["podman"])["podman"]
    assert result.status == "error" and (result.error or "").startswith("malformed JSON from podman ps")


def test_a_failing_tool_is_an_error_with_its_message(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    fake_tool(bindir, "lxc-ls", "echo 'lxc-ls: boom: permission denied' >&2; exit 1\n")
    result = collect_state(Options(path=str(bindir), lxc_paths=(str(tmp_path),)), ["lxc"])["lxc"]
    assert (result.status, result.error) == ("error", "lxc-ls: exit status 1: lxc-ls: boom: permission denied")


def test_nothing_under_an_empty_root_is_absent(tmp_path: Path) -> None:
    results = collect_state(Options(root=str(tmp_path)))
    assert list(results) == list(TECHS)
    assert {r.status for r in results.values()} == {"absent"}


def _tree_with_an_lxc_container(root: Path, name: bytes) -> None:
    """A host tree: one lxc container running as pid 4242 in a v2 cgroup of its own."""
    cfg = root / "var/lib/lxc"
    cfg.mkdir(parents=True)
    ct = os.path.join(bytes(cfg), name)
    os.mkdir(ct)
    with open(os.path.join(ct, b"config"), "wb") as f:
        f.write(b"lxc.uts.name = hostile\n")
    proc = root / "proc/4242"
    proc.mkdir(parents=True)
    (proc / "cmdline").write_bytes(b"/sbin/init\0")
    (proc / "stat").write_text("4242 (init) S 4200 4242 4242 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0\n")
    cgname = b"lxc.payload." + name
    with open(proc / "cgroup", "wb") as f:
        f.write(b"0::/" + cgname + b"\n")
    cg = os.path.join(bytes(root / "sys/fs/cgroup"), cgname)
    os.makedirs(cg)
    (root / "sys/fs/cgroup/cgroup.controllers").write_text("cpu memory pids\n")
    Path(os.fsdecode(cg), "memory.current").write_text("1048576\n")
    Path(os.fsdecode(cg), "memory.max").mkdir()  # EISDIR: exists but cannot be read
    Path(os.fsdecode(cg), "cpu.max").write_text("50000 100000\n")
    Path(os.fsdecode(cg), "cpu.stat").write_text("usage_usec 2500000\nuser_usec 1\n")


def test_unreadable_cgroup_file_is_recorded_not_fatal(tmp_path: Path) -> None:
    _tree_with_an_lxc_container(tmp_path, b"ct1")
    [inst] = collect_state(Options(root=str(tmp_path)), ["lxc"])["lxc"].to_json()["instances"]
    assert (inst["state"], inst["init_pid"]) == ("running", 4242)
    assert inst["memory"] == {"limit": None, "usage": 1048576}
    assert inst["cpu"] == {"limit": 0.5, "usage_seconds": 2.5} and inst["resources_from"] == "cgroup v2"
    assert inst["read_errors"] == {"/sys/fs/cgroup/lxc.payload.ct1/memory.max": "Is a directory"}


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_permission_denied_cgroup_file_as_an_unprivileged_user() -> None:
    top = Path(tempfile.mkdtemp(prefix="ckstate-"))  # pytest's tmp is root-only
    try:
        root = top / "t"
        _tree_with_an_lxc_container(root, b"ct1")
        (root / "sys/fs/cgroup/lxc.payload.ct1/cpu.stat").chmod(0)
        for p in [top, *root.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)
        proc = _cli("--json", "--tech", "lxc", "--root", str(root), user="65534")
        assert proc.returncode == 0, proc.stderr
        [inst] = json.loads(proc.stdout)["lxc"]["instances"]
        assert inst["read_errors"]["/sys/fs/cgroup/lxc.payload.ct1/cpu.stat"] == "Permission denied"
        assert inst["memory"]["usage"] == 1048576
    finally:
        shutil.rmtree(top)


HOSTILE = b"ct\xff\x1b[31m\xe2\x80\xaeevil\x07"      # running (its cgroup is in /proc)
NEWLINE = b"nl\nname\x1b]0;title\x07"                  # defined only


def test_hostile_names_keep_json_valid_and_the_table_escaped(tmp_path: Path) -> None:
    _tree_with_an_lxc_container(tmp_path, HOSTILE)
    other = os.path.join(bytes(tmp_path / "var/lib/lxc"), NEWLINE)
    os.mkdir(other)
    with open(os.path.join(other, b"config"), "wb") as f:
        f.write(b"lxc.uts.name = x\n")
    proc = _cli("--json", "--tech", "lxc", "--root", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    proc.stdout.encode("ascii")  # ensure_ascii: 7-bit whatever the names hold
    found = {i["name"]: i for i in json.loads(proc.stdout)["lxc"]["instances"]}
    assert found["ct\\xff\x1b[31m\u202eevil\x07"]["state"] == "running"
    assert found["nl\nname\x1b]0;title\x07"]["state"] == "stopped"
    table = _cli("--tech", "lxc", "--root", str(tmp_path))
    assert table.returncode == 0, table.stderr
    assert not [c for c in table.stdout if (ord(c) < 32 and c != "\n") or c in "\x7f\u202e"]
    rows = table.stdout.splitlines()[1:3]
    assert all(r.startswith("lxc ") for r in rows) and len(table.stdout.splitlines()) == 5
    assert any("ct\\\\xff\\x1b[31m\\u202eevil\\x07" in r for r in rows)
    assert any("nl\\x0aname\\x1b]0;title\\x07" in r for r in rows)
