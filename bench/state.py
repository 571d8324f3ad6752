#!/usr/bin/env python3
"""Figure: `crashkit state --json` wall time, on this host and on a simulated big host.

The big host is a tree made in a temp dir and read through ``--root``: 500 containers (150
Docker with config.v2.json + hostconfig.json, 100 Podman in containers.json, 100 LXC with a
config and a small rootfs, 100 OpenVZ with CTID.conf, veinfo, beancounters and a ploop
DiskDescriptor.xml, 50 nspawn images) and 50 libvirt VMs (domain XML, half of them running
with a status file), every running one with a /proc entry and a cgroup v2 directory whose
memory/cpu files the cgroup reader reads. Baselines measured in the same run: the start-up of
the interpreter (``python3 -c pass``) and, where installed, one ``virsh -c test:///default
list --all``. Targets: under 1 s on this host, under 5 s on the big host.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
CGROUP = "sys/fs/cgroup"


def timed(argv: list[str], runs: int) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Median wall time of *runs* runs of *argv*, and the last run's result."""
    times, last = [], None
    for _ in range(runs):
        start = time.perf_counter()
        last = subprocess.run(argv, capture_output=True, text=True, env=ENV, cwd=REPO)
        times.append(time.perf_counter() - start)
    assert last is not None
    return statistics.median(times), last


def write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


def running_proc(root: Path, pid: int, cgroup: str, argv: str = "/sbin/init") -> None:
    """A /proc/PID of a running instance and its cgroup v2 directory with usage files."""
    write(root / f"proc/{pid}/cmdline", argv.replace(" ", "\0") + "\0")
    write(root / f"proc/{pid}/stat", f"{pid} (init) S 1 {pid} {pid} 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {pid} 0 0\n")
    write(root / f"proc/{pid}/cgroup", f"0::{cgroup}\n")
    d = root / CGROUP / cgroup.lstrip("/")
    write(d / "memory.current", f"{pid * 4096}\n")
    write(d / "memory.max", "536870912\n")
    write(d / "cpu.max", "100000 100000\n")
    write(d / "cpu.stat", f"usage_usec {pid * 1000}\nuser_usec 1\nsystem_usec 1\n")


def docker(root: Path, n: int, pid0: int) -> None:
    for i in range(n):
        cid = f"{i:064x}"
        running = i % 2 == 0
        pid = pid0 + i if running else 0
        state = {"Running": running, "Paused": False, "Restarting": False, "OOMKilled": False,
                 "Dead": False, "Pid": pid, "ExitCode": 0,
                 "StartedAt": "2026-01-02T03:04:05.123456789Z" if running else "0001-01-01T00:00:00Z"}
        cfg = {"ID": cid, "Name": f"/web{i}", "State": state, "Created": "2026-01-01T00:00:00Z",
               "Config": {"Image": "nginx:1.25", "Hostname": cid[:12], "Labels": {"app": "web"}},
               "NetworkSettings": {"Networks": {"bridge": {"IPAddress": f"172.17.{i // 250}.{i % 250 + 2}"}}}}
        d = root / f"var/lib/docker/containers/{cid}"
        write(d / "config.v2.json", json.dumps(cfg))
        write(d / "hostconfig.json", json.dumps({"Memory": 536870912, "NanoCpus": 1000000000,
                                                 "RestartPolicy": {"Name": "always"}}))
        if running:
            running_proc(root, pid, f"/system.slice/docker-{cid}.scope", "nginx -g daemon off;")


def podman(root: Path, n: int, pid0: int) -> None:
    entries = []
    for i in range(n):
        cid = f"{i + 10 ** 6:064x}"
        entries.append({"id": cid, "names": [f"db{i}"], "image": f"{i:064x}", "layer": f"{i:064x}",
                        "metadata": json.dumps({"image-name": "postgres:16", "name": f"db{i}"}),
                        "created": "2026-01-01T00:00:00.5Z"})
        if i % 2 == 0:
            running_proc(root, pid0 + i, f"/machine.slice/libpod-{cid}.scope/container", "postgres")
    write(root / "var/lib/containers/storage/overlay-containers/containers.json", json.dumps(entries))


def lxc(root: Path, n: int, pid0: int) -> None:
    for i in range(n):
        d = root / f"var/lib/lxc/ct{i}"
        rootfs = d / "rootfs"
        for sub in ("etc", "bin", "usr/lib"):
            (rootfs / sub).mkdir(parents=True, exist_ok=True)
        write(rootfs / "etc/hostname", f"ct{i}\n")
        write(d / "config", "# Template used to create this container: /usr/share/lxc/templates/lxc-download\n"
              "# Parameters passed to the template: -d debian -r bookworm -a amd64\n"
              f"lxc.rootfs.path = dir:/var/lib/lxc/ct{i}/rootfs\nlxc.uts.name = ct{i}\n"
              f"lxc.net.0.ipv4.address = 10.0.3.{i % 250 + 2}/24\nlxc.start.auto = 1\n"
              "lxc.cgroup2.memory.max = 1G\n")
        if i % 2 == 0:
            running_proc(root, pid0 + i, f"/lxc.payload.ct{i}")


def openvz(root: Path, n: int, data: Path) -> None:
    veinfo, ubc = [], ["Version: 2.5", "       uid  resource  held  maxheld  barrier  limit  failcnt"]
    write(root / "etc/vz/vz.conf", "VE_ROOT=/vz/root/$VEID\nVE_PRIVATE=/vz/private/$VEID\n")
    descriptor = (data / "openvz/DiskDescriptor.xml").read_bytes()
    for i in range(n):
        ctid = str(1000 + i)
        write(root / f"etc/vz/conf/{ctid}.conf",
              f'PHYSPAGES="0:262144"\nCPULIMIT="100"\nVE_PRIVATE="/vz/private/$VEID"\n'
              f'OSTEMPLATE="centos-7-x86_64"\nHOSTNAME="ct{ctid}"\nIP_ADDRESS="10.1.{i // 250}.{i % 250 + 1}"\n'
              f'ONBOOT="yes"\nNAME="vz{i}"\n')
        write(root / f"vz/private/{ctid}/root.hdd/DiskDescriptor.xml", descriptor)
        write(root / f"vz/private/{ctid}/root.hdd/root.hds", b"\0" * 4096)
        if i % 2 == 0:
            veinfo.append(f"{ctid:>10} {0:>5} {12:>5}     10.1.{i // 250}.{i % 250 + 1}")
            ubc.append(f"{ctid:>10}:  numproc  12  40  240  240  {1 if i % 10 == 0 else 0}")
            ubc.append("            physpages  4096  8192  0  262144  0")
    write(root / "proc/vz/veinfo", "\n".join(veinfo) + "\n")
    write(root / "proc/user_beancounters", "\n".join(ubc) + "\n")


def nspawn(root: Path, n: int) -> None:
    for i in range(n):
        write(root / f"var/lib/machines/m{i}/etc/os-release", 'PRETTY_NAME="Debian GNU/Linux 12"\n')


def libvirt(root: Path, n: int, pid0: int) -> None:
    for i in range(n):
        uuid = f"{i:08x}-0000-4000-8000-{i:012x}"
        dom = (f"<domain type='kvm'><name>vm{i}</name><uuid>{uuid}</uuid><memory unit='KiB'>2097152</memory>"
               f"<vcpu>2</vcpu><os><type arch='x86_64'>hvm</type></os><devices><disk type='file'>"
               f"<driver type='qcow2'/><source file='/var/lib/libvirt/images/vm{i}.qcow2'/>"
               f"<target dev='vda'/></disk><interface type='network'><mac address='52:54:00:00:00:{i % 256:02x}'/>"
               f"</interface></devices></domain>")
        write(root / f"etc/libvirt/qemu/vm{i}.xml", dom)
        write(root / f"var/lib/libvirt/images/vm{i}.qcow2", b"\0" * 8192)
        if i % 2 == 0:
            pid = pid0 + i
            write(root / f"run/libvirt/qemu/vm{i}.xml",
                  f"<domstatus state='running' reason='booted' pid='{pid}'>{dom}</domstatus>")
            running_proc(root, pid, f"/machine.slice/machine-qemu\\x2d{i + 1}\\x2dvm{i}.scope/libvirt/emulator",
                         f"/usr/bin/qemu-system-x86_64 -name guest=vm{i},debug-threads=on -uuid {uuid}")


def make_tree(root: Path) -> int:
    """The simulated host; returns how many containers and VMs it holds."""
    data = REPO / "tests/collectors/state/data"
    write(root / CGROUP / "cgroup.controllers", "cpu memory pids\n")
    docker(root, 150, 10000)
    podman(root, 100, 20000)
    lxc(root, 100, 30000)
    openvz(root, 100, data)
    nspawn(root, 50)
    libvirt(root, 50, 40000)
    return 550


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    crashkit = [sys.executable, "-m", "collectors.cli", "state", "--json"]

    base, _ = timed([sys.executable, "-c", "pass"], args.runs)
    print(f"baseline  python3 -c pass                  {base * 1000:8.1f} ms")
    virsh = None
    if subprocess.run(["sh", "-c", "command -v virsh"], capture_output=True).returncode == 0:
        virsh, _ = timed(["virsh", "-c", "test:///default", "list", "--all"], args.runs)
        print(f"baseline  virsh -c test:///default list    {virsh * 1000:8.1f} ms")

    host, res = timed(crashkit, args.runs)
    assert res.returncode == 0, res.stderr
    found = {t: (v["status"], len(v["instances"])) for t, v in json.loads(res.stdout).items()}
    print(f"this host crashkit state --json           {host * 1000:8.1f} ms  "
          f"x{host / base:.1f} python{f', x{host / virsh:.1f} virsh' if virsh else ''}  {found}")

    with tempfile.TemporaryDirectory(prefix="ckstate-bench-") as tmp:
        total = make_tree(Path(tmp))
        big, res = timed([*crashkit, "--root", tmp], args.runs)
        assert res.returncode == 0, res.stderr
        data = json.loads(res.stdout)
        counted = sum(len(v["instances"]) for v in data.values())
        assert counted == total, f"{counted} instances, expected {total}: " + \
            str({t: (v["status"], len(v["instances"]), v["error"]) for t, v in data.items()})
        running = sum(1 for v in data.values() for i in v["instances"] if i["state"] == "running")
        print(f"big host  {total} instances ({running} running) {big * 1000:8.1f} ms  "
              f"x{big / base:.1f} python{f', x{big / virsh:.1f} virsh' if virsh else ''}")
    ok = host < 1.0 and big < 5.0
    print(f"targets: this host < 1 s: {'met' if host < 1.0 else 'MISSED'}; "
          f"500 containers + 50 VMs < 5 s: {'met' if big < 5.0 else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
