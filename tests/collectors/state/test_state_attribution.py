"""Attribution of processes to containers and VMs: processes this test starts in new
namespaces and in cgroup sub-trees named as docker, podman, lxc, nspawn, OpenVZ and libvirt
name theirs (cgroup v1 and v2), a real QEMU, the real /proc of this host, and literal text
for the layouts no runtime here writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statehelpers import cgroup_dir, move_to_cgroup, namespaced, need_root, qemu, token

from collectors.corehook import procsnap
from collectors.state import attribution, signals

REPO = Path(__file__).resolve().parents[3]
HEXID = "5f" * 32
UUID = "6a0c2f3e-1b2d-4c5e-8f90-a1b2c3d4e5f6"


# ------------------------------------------------------------------ real processes, real cgroups

CGROUP_LAYOUTS = [
    # (hierarchy, path under it, expected tech, expected id) — each runtime's own naming
    ("unified", f"system.slice/docker-{HEXID}.scope", "docker", HEXID),
    ("pids", f"docker/{HEXID}", "docker", HEXID),
    ("unified", f"machine.slice/libpod-{HEXID}.scope/container", "podman", HEXID),
    ("memory", f"libpod_parent/libpod-{HEXID}", "podman", HEXID),
    ("unified", "lxc.payload.{t}", "lxc", "{t}"),
    ("pids", "lxc/{t}", "lxc", "{t}"),
    ("unified", "machine.slice/machine-{t}\\x2dweb.scope/payload", "nspawn", "{t}-web"),
    ("pids", "machine.slice/machine-{t}.scope", "nspawn", "{t}"),
    ("unified", "kubepods.slice/kubepods-pod{t}.slice/crio-{h}.scope", "cri-o", "{h}"),
    ("unified", "kubepods.slice/kubepods-pod{t}.slice/cri-containerd-{h}.scope", "containerd", "{h}"),
    ("pids", "4242", "openvz", "4242"),
    ("unified", f"machine.slice/{UUID}", "openvz", UUID),
]


@pytest.mark.parametrize("kind, path, tech, cid", CGROUP_LAYOUTS)
def test_namespaced_process_in_a_runtime_cgroup(kind: str, path: str, tech: str, cid: str) -> None:
    need_root()
    t = token()
    h = t.encode().hex() * 3      # a runtime's hex id, unique to this test run
    path, cid = path.format(t=t, h=h), cid.format(t=t, h=h)
    with cgroup_dir(kind, path) as directory, namespaced("sleep", "60") as pid:
        move_to_cgroup(pid, directory)
        att = attribution.attribute_pid(pid)
        assert (att.tech, att.id) == (tech, cid)
        assert not att.vm and not att.is_host
        assert att.init_pid == pid and att.ns_pid == 1
        assert {"cgroup", "namespaces", "nspid"} <= set(att.signals)
        assert att.cmdline == b"sleep\x0060\x00"
        if tech in ("lxc", "nspawn"):
            assert att.name == cid
        if tech == "openvz" and cid == UUID:
            assert att.uuid == UUID


def test_child_of_the_container_init_finds_the_init() -> None:
    need_root()
    with cgroup_dir("pids", f"docker/{HEXID}") as directory, \
            namespaced("sh", "-c", "sleep 60 & wait") as init:
        move_to_cgroup(init, directory)
        from statehelpers import children, wait_for
        assert wait_for(lambda: bool(children(init)))
        [child] = children(init)
        move_to_cgroup(child, directory)
        att = attribution.attribute_pid(child)
        assert (att.tech, att.id, att.init_pid) == ("docker", HEXID, init)
        assert att.ns_pid == 2


def test_namespaces_alone_give_unknown_and_container_env_names_it() -> None:
    with namespaced("sleep", "60") as pid:
        att = attribution.attribute_pid(pid)
        assert att.tech == "unknown" and att.id is None and att.init_pid == pid
        assert "namespaces" in att.signals and "cgroup" not in att.signals
    env = {"PATH": os.environ["PATH"], "container": "lxc"}
    with namespaced("sleep", "60", env=env) as pid:
        att = attribution.attribute_pid(pid)
        assert att.tech == "lxc" and "environ" in att.signals


def test_host_process_in_a_host_cgroup_is_the_host() -> None:
    att = attribution.attribute_pid(os.getpid())
    assert att.is_host and att.tech is None and att.signals == ()
    assert att.to_json()["host"] is True


def test_real_qemu_maps_to_its_vm_by_name_and_uuid() -> None:
    name = token()
    with qemu("-name", name, "-uuid", UUID) as proc:
        att = attribution.attribute_pid(proc.pid)
    assert (att.tech, att.id, att.name, att.uuid) == ("qemu", name, name, UUID)
    assert att.vm and att.init_pid == proc.pid and "qemu-cmdline" in att.signals


def test_real_qemu_in_a_libvirt_machine_scope() -> None:
    need_root()
    name = token()
    with cgroup_dir("unified", f"machine.slice/machine-qemu\\x2d7\\x2d{name}.scope/emulator") as d, \
            qemu("-name", f"guest={name},debug-threads=on", "-uuid", UUID.upper()) as proc:
        move_to_cgroup(proc.pid, d)
        att = attribution.attribute_pid(proc.pid)
        assert (att.tech, att.id, att.uuid, att.vm) == ("libvirt", name, UUID, True)
        assert {"qemu-cmdline", "cgroup"} <= set(att.signals)


def test_every_process_of_this_host_is_attributed() -> None:
    """The real /proc: never raises, and every non-host answer names its evidence."""
    seen = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            att = attribution.attribute_pid(int(entry))
            assert att.is_host or att.signals
            seen += 1
    assert seen > 5


def test_gone_process_is_the_host_with_no_signals() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    att = attribution.attribute_pid(proc.pid)
    assert att.is_host and att.init_pid is None


# ------------------------------------------------------------------ names from the runtimes' files

def test_resolve_name_reads_the_runtimes_files(tmp_path: Path) -> None:
    docker = tmp_path / "var/lib/docker/containers" / HEXID
    docker.mkdir(parents=True)
    (docker / "config.v2.json").write_text('{"ID": "%s", "Name": "/web"}' % HEXID)
    store = tmp_path / "var/lib/containers/storage/overlay-containers"
    store.mkdir(parents=True)
    (store / "containers.json").write_text('[{"id": "%s", "names": ["db"]}]' % HEXID)
    conf = tmp_path / "etc/vz/conf"
    conf.mkdir(parents=True)
    (conf / "101.conf").write_text('OSTEMPLATE="centos-7"\nNAME="mail"\n')
    for tech, cid, expected in (("docker", HEXID, "web"), ("podman", HEXID, "db"),
                                ("openvz", "101", "mail"), ("openvz", "../x", None)):
        att = attribution.resolve_name(attribution.Attribution(1, tech, cid), str(tmp_path))
        assert att.name == expected


# ------------------------------------------------------------------ literal text

@pytest.mark.parametrize("path, expected", [
    (f"/kubepods.slice/kubepods-pod1.slice/crio-{HEXID}.scope", ("cri-o", HEXID, False)),
    (f"/kubepods.slice/kubepods-pod1.slice/cri-containerd-{HEXID}.scope", ("containerd", HEXID, False)),
    ("/machine.slice/machine-qemu\\x2d1\\x2dvm\\x2done.scope/libvirt/vcpu0", ("libvirt", "vm-one", True)),
    ("/machine.slice/machine-lxc\\x2d4242\\x2dct1.scope", ("lxc", "ct1", False)),
    ("/lxc.payload/web1", ("lxc", "web1", False)),
    ("/user.slice/user-1000.slice/session-2.scope", None),
    ("/process_api/ecbe18f22129c4085a7a3aea70128b15", None),  # this VM's own memory cgroup
    ("/", None),
])
def test_cgroup_paths(path: str, expected: tuple[str, str, bool] | None) -> None:
    found = signals.classify_cgroup_path(path)
    assert (found and (found.tech, found.id, found.vm)) == expected


@pytest.mark.parametrize("argv, expected", [
    # as libvirt 9 writes it (qemuBuildNameCommandLine)
    (["/usr/bin/qemu-system-x86_64", "-name", "guest=web,,1,debug-threads=on", "-S", "-uuid", UUID],
     ("web,1", UUID, True)),
    (["qemu-system-aarch64", "-name", "plain", "-m", "512"], ("plain", None, False)),
    (["qemu-kvm", "-name", "vz7,process=qemu:vz7", "-uuid", "not-a-uuid"], ("vz7", None, False)),
    (["qemu-system-x86_64", "--name=eq", f"--uuid={UUID.upper()}"], ("eq", UUID, False)),
    (["qemu-system-x86_64", "-name"], (None, None, False)),
])
def test_qemu_identity(argv: list[str], expected: tuple[str | None, str | None, bool]) -> None:
    ident = signals.qemu_identity(argv)
    assert (ident.name, ident.uuid, ident.libvirt) == expected
    assert signals.is_qemu(argv)


def test_openvz_envid_and_nspid_from_status() -> None:
    # OpenVZ kernels add envID/VPid to /proc/PID/status (vzkernel fs/proc/array.c)
    status = procsnap.parse_status(b"Name:\tnginx\nPid:\t4711\nNSpid:\t4711\t12\nenvID:\t101\nVPid:\t12\n")
    assert signals.openvz_envid(status) == "101"
    assert procsnap.status_ids(status, "NSpid") == (4711, 12)
    assert signals.openvz_envid(procsnap.parse_status(b"envID:\t0\n")) is None


def test_snapshot_with_envid_only_is_openvz() -> None:
    snap = procsnap.ProcSnapshot(4711, files={"status": b"NSpid:\t4711\t12\nenvID:\t101\n",
                                              "cgroup": b"0::/\n"}, gone=True)
    att = attribution.attribute_snapshot(snap, {})
    assert (att.tech, att.id, att.ns_pid) == ("openvz", "101", 12)
    assert att.signals == ("envid", "nspid")


def test_container_uuid_from_environ() -> None:
    assert signals.uuid_from_environ(b"container=systemd-nspawn\0container_uuid=" +
                                     UUID.replace("-", "").encode() + b"\0") == UUID
    assert signals.uuid_from_environ(b"container_uuid=zz\0") is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.lists(st.text(max_size=30), max_size=8))
def test_parsers_never_raise(text: str, argv: list[str]) -> None:
    signals.parse_cgroup(text)
    signals.qemu_identity(["qemu-system-x86_64", *argv])
    signals.qemu_opt_fields(text)


def test_hook_import_closure_stays_small() -> None:
    """The crash hook imports the attribution: its closure stays the standard library,
    coripper's minimizer, reporter's problem-directory code and our collectors' hook/state
    modules (python -S: no site-packages noise)."""
    code = ("import sys; sys.path.insert(0, %r); import collectors.corehook.hook, "
            "collectors.corehook.capture, collectors.state.attribution; "
            "print(' '.join(sorted(sys.modules)))" % str(REPO))
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    stdlib = set(sys.stdlib_module_names) | {"__main__"}
    foreign = [m for m in out if m.split(".")[0] not in stdlib
               and m.split(".")[0] not in ("collectors", "coripper", "reporter")]
    assert foreign == []
    ours = {m for m in out if m.startswith("collectors.state")}
    assert ours == {"collectors.state", "collectors.state.attribution", "collectors.state.signals"}
    assert not [m for m in out if m.startswith("coripper.unwinder")]
