"""The LXC and systemd-nspawn plugins against real containers started here (lxc-execute with
our own lxcpath; systemd-nspawn --register=no, since machined does not run on this VM), and
machinectl's JSON, which cannot be produced here (see data/README.md)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from statehelpers import DATA, children, need, need_root, token, wait_for

from collectors.state.base import Options
from collectors.state.collect import collect_state
from collectors.state.plugins.nspawn import parse_machines

BUSYBOX = Path("/bin/busybox")


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    need_root()
    if not BUSYBOX.exists() or b"/ld-linux" in BUSYBOX.read_bytes()[:4096]:
        pytest.skip("needs a static /bin/busybox (Debian package busybox-static)")
    root = tmp_path_factory.mktemp("ckstate-ct") / "rootfs"
    for d in ("bin", "usr", "etc", "proc", "sys", "dev", "tmp", "run", "var"):
        (root / d).mkdir(parents=True)
    shutil.copy(BUSYBOX, root / "bin/busybox")
    for applet in ("sh", "sleep"):
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc/os-release").write_text('ID=crashkit-test\nPRETTY_NAME="crashkit test rootfs"\n')
    return root


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for pid in children(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.kill()
    proc.wait(timeout=30)


@pytest.fixture
def lxc_container(rootfs, tmp_path) -> Iterator[tuple[Path, str, subprocess.Popen[bytes]]]:  # type: ignore[no-untyped-def]
    need("lxc-execute", "lxc")
    name = token()
    (tmp_path / name).mkdir()
    (tmp_path / name / "config").write_text(
        "# Template used to create this container: /usr/share/lxc/templates/lxc-download\n"
        "# Parameters passed to the template: -d crashkit -r test -a amd64\n"
        f"lxc.uts.name = {name}\nlxc.rootfs.path = dir:{rootfs}\nlxc.mount.auto = proc:rw sys:ro\n"
        "lxc.net.0.type = empty\nlxc.apparmor.profile = unconfined\nlxc.start.auto = 1\n")
    # a second, defined and never started
    (tmp_path / "stopped1").mkdir()
    (tmp_path / "stopped1/config").write_text(f"lxc.rootfs.path = dir:{rootfs}\n")
    proc = subprocess.Popen(["lxc-execute", "-n", name, "-P", str(tmp_path), "--", "sleep", "600"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: b"RUNNING" in subprocess.run(
            ["lxc-info", "-n", name, "-P", str(tmp_path), "-s"], capture_output=True).stdout, 30)
        yield tmp_path, name, proc
    finally:
        _stop(proc)
        subprocess.run(["lxc-stop", "-k", "-n", name, "-P", str(tmp_path)], capture_output=True)


def test_lxc_running_and_stopped(lxc_container, rootfs) -> None:  # type: ignore[no-untyped-def]
    lxcpath, name, _ = lxc_container
    result = collect_state(Options(lxc_paths=(str(lxcpath),)), ["lxc"])["lxc"].to_json()
    assert result["status"] == "present", result["error"]
    found = {i["name"]: i for i in result["instances"]}
    run = found[name]
    info = subprocess.run(["lxc-info", "-n", name, "-P", str(lxcpath), "-p", "-H"],
                          capture_output=True, text=True).stdout.strip()
    assert (run["state"], run["native_state"], run["init_pid"]) == ("running", "RUNNING", int(info))
    assert run["os"] == "crashkit test amd64" and run["autostart"] is True
    assert run["config"] == f"{lxcpath}/{name}/config"
    assert run["disks"][0]["path"] == str(rootfs) and run["disks"][0]["usage"] > 0
    assert run["memory"]["usage"] and run["resources_from"].startswith("cgroup")
    assert found["stopped1"]["state"] == "stopped" and found["stopped1"]["init_pid"] is None


@pytest.fixture
def nspawn_machine(rootfs) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:  # type: ignore[no-untyped-def]
    need("systemd-nspawn", "systemd-container")
    machine = token()
    proc = subprocess.Popen(["systemd-nspawn", "-q", "-D", str(rootfs), "--register=no", "--keep-unit",
                             "-M", machine, "/bin/sleep", "600"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def payload_started() -> bool:
            kids = children(proc.pid)
            return bool(kids) and os.readlink(f"/proc/{kids[0]}/exe").endswith("busybox")
        assert wait_for(payload_started, 30)
        yield machine, proc
    finally:
        _stop(proc)


def test_nspawn_supervisor_found_in_proc(nspawn_machine, rootfs) -> None:  # type: ignore[no-untyped-def]
    machine, proc = nspawn_machine
    result = collect_state(Options(), ["nspawn"])["nspawn"].to_json()
    assert result["status"] == "present", result["error"]
    [inst] = [i for i in result["instances"] if i["name"] == machine]
    [init] = children(proc.pid)
    assert (inst["state"], inst["init_pid"], inst["extra"]["supervisor_pid"]) == ("running", init, proc.pid)
    assert inst["disks"][0]["path"] == str(rootfs)


def test_nspawn_images_under_root(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "var/lib/machines/deb12/etc").mkdir(parents=True)
    (tmp_path / "var/lib/machines/deb12/etc/os-release").write_text('PRETTY_NAME="Debian GNU/Linux 12"\n')
    (tmp_path / "var/lib/machines/arch.raw").write_bytes(b"\0" * 4096)
    result = collect_state(Options(root=str(tmp_path)), ["nspawn"])["nspawn"].to_json()
    found = {i["name"]: i for i in result["instances"]}
    assert found["deb12"]["os"] == "Debian GNU/Linux 12" and found["deb12"]["state"] == "stopped"
    assert found["arch"]["disks"][0]["format"] == "raw"


def test_machinectl_json_fixture() -> None:
    machines = parse_machines((DATA / "machinectl-list.json").read_bytes())
    assert [(m["machine"], m["class"]) for m in machines] == [("fedora38", "container"), ("qemu-1-win", "vm")]
