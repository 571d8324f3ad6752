"""Crashes inside real containers (podman, lxc, systemd-nspawn) and a chroot, through the
kernel's core_pattern pipe into crashkit-hook.

The container's root file system is a directory built here: a static busybox (Debian's
busybox-static) and the static ``crasher``. Oracles are the runtimes themselves (``podman
inspect`` ids, ``podman mount`` paths, ``lxc-info``, the names we gave), what the container's
own shell wrote (``$!``, ``/proc/1/cmdline`` as the container sees them) and gdb on the saved
core with the container's binary. Each runtime's test skips only when its Debian package is
not installed (.ci/deps installs them); an installed runtime that cannot start a container
fails the test.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testlib import require_core_pattern, wait_for
from hookenv import HookEnv, element

from collectors.corehook import container, procsnap
from reporter.elements import format_cmdline

pytestmark = pytest.mark.root

BUSYBOX = Path("/bin/busybox")
DATA = Path(__file__).parent / "data"
FRAMES = ["crash_write_null", "crash_level2", "crash_level1", "main"]


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (rootful podman, lxc-execute, systemd-nspawn)")


def _need(tool: str, package: str) -> None:
    if not shutil.which(tool):
        pytest.skip(f"needs {tool} (Debian package {package})")


def _static_busybox() -> Path:
    # A dynamic busybox would need the host's libc inside the rootfs; the static one has no
    # PT_INTERP (whose "/lib64/ld-linux-x86-64.so.2" string sits in the first page).
    if not BUSYBOX.exists() or b"/ld-linux" in BUSYBOX.read_bytes()[:4096]:
        pytest.skip("needs a static /bin/busybox (Debian package busybox-static)")
    return BUSYBOX


def _make_rootfs(path: Path, crasher: Path) -> Path:
    """A minimal OS tree: /bin/{busybox,sh,...}, /crasher, and what nspawn checks for
    (/usr, /etc/os-release)."""
    for d in ("bin", "usr", "etc", "proc", "sys", "dev", "tmp", "out", "root", "run", "var"):
        (path / d).mkdir(parents=True, exist_ok=True)
    shutil.copy(_static_busybox(), path / "bin" / "busybox")
    for applet in ("sh", "cat", "sleep", "cp"):
        (path / "bin" / applet).symlink_to("busybox")
    (path / "etc" / "os-release").write_text("ID=crashkit-test\nNAME=crashkit test rootfs\n")
    shutil.copy(crasher, path / "crasher")
    (path / "crasher").chmod(0o755)
    (path / "tmp").chmod(0o1777)
    return path


@pytest.fixture(scope="module")
def rootfs(programs, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    return _make_rootfs(tmp_path_factory.mktemp("ctroot") / "rootfs", programs.crasher("static"))


@pytest.fixture
def hook() -> Iterator[HookEnv]:
    require_core_pattern()
    env = HookEnv()
    yield env
    env.cleanup()


def _token() -> str:
    return "ck" + uuid.uuid4().hex[:10]


# Inside the container: run the crasher as a child of the container's shell, and leave
# its in-namespace pid and the container init's cmdline (as the container sees them) in /out.
SCRIPT = "/crasher segv & echo $! > /out/{t}.pid; cp /proc/1/cmdline /out/{t}.init; wait"


def _expect_container_dir(hook: HookEnv, out: Path, token: str, kind: str, cid: str) -> Path:
    [d] = hook.dirs()
    assert element(d, "reason") == "crasher killed by SIGSEGV"
    assert element(d, "container") == kind
    assert element(d, "container_id") == cid
    init = (out / f"{token}.init").read_bytes()
    assert element(d, "container_cmdline") == format_cmdline(init).decode()
    pid = int((out / f"{token}.pid").read_text())
    assert element(d, "pid") == str(pid)
    global_pid = int(element(d, "global_pid"))
    assert global_pid != pid and d.name.endswith(f"-{global_pid}")
    assert element(d, "executable") == "/crasher"  # the container's path, not the host's
    assert not (d / "rootdir").exists()
    ns = element(d, "namespaces")
    assert "pid : own" in ns and "mnt : own" in ns
    return d


def _backtrace(d: Path, *extra: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "collectors.cli", "backtrace", "--json", *extra, str(d)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _crash_frames(result: dict) -> list[str | None]:
    [thread] = [t for t in result["core_backtrace"]["stacktrace"] if t.get("crash_thread")]
    return [f.get("function_name") for f in thread["frames"]]


def _gdb_frames(binary: Path, core: Path, sysroot: Path) -> list[str]:
    gdb = subprocess.run(["gdb", "-nx", "-batch", "-ex", f"set sysroot {sysroot}", "-ex", "bt",
                          str(binary), str(core)], capture_output=True, text=True, timeout=120)
    # gdb prints frame #0 once when it loads the core and again in "bt": key by number.
    frames = dict(re.findall(r"^#(\d+)\s+(?:0x[0-9a-f]+ in )?(\w+)", gdb.stdout, re.M))
    return [frames.get(str(i), "?") for i in range(len(frames))]


def _check_core_through_rootfs(d: Path, rootfs: Path) -> None:
    """The saved core names container paths (/crasher): without the container's files only
    the crash address is known; through the container's root the full stack comes back, the
    same as gdb's with the container's binary."""
    alone = _crash_frames(_backtrace(d, "--rootdir", "/"))
    assert alone[:1] != ["crash_write_null"]  # /crasher is not on the host
    frames = _crash_frames(_backtrace(d, "--rootdir", str(rootfs)))
    assert frames[:4] == FRAMES
    assert _gdb_frames(rootfs / "crasher", d / "coredump", rootfs)[:4] == FRAMES


def _sleepers() -> set[int]:
    """Host pids of ``/crasher sleep`` processes in another mount namespace."""
    own = os.readlink("/proc/self/ns/mnt")
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if Path(f"/proc/{name}/cmdline").read_bytes() == b"/crasher\0sleep\0" and \
                    os.readlink(f"/proc/{name}/ns/mnt") != own:
                found.add(int(name))
        except OSError:
            continue
    return found


def _find_sleeper(before: set[int], timeout: float = 30.0) -> int:
    """The one ``/crasher sleep`` that appeared since *before* was taken."""
    new: set[int] = set()
    assert wait_for(lambda: bool(new.update(_sleepers() - before) or new), timeout=timeout), \
        "the container's /crasher sleep never appeared"
    [pid] = new
    return pid


def _reap_sleepers(before: set[int]) -> None:
    """Kill the sleepers this test started (in a container a pid 1 ignores SIGTERM)."""
    for pid in _sleepers() - before:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _detect_live(pid: int) -> container.ContainerInfo:
    return container.detect(procsnap.read_snapshot(pid), procsnap.read_init_namespaces())


# ------------------------------------------------------------------ podman

@pytest.fixture(scope="module")
def podman(rootfs, tmp_path_factory) -> Iterator[tuple[list[str], str]]:  # type: ignore[no-untyped-def]
    """(``podman run`` prefix, local image imported from *rootfs*: no registry)."""
    _need_root()
    _need("podman", "podman")
    tar = tmp_path_factory.mktemp("ctimg") / "rootfs.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
    image = f"localhost/crashkit-test:{_token()}"
    subprocess.run(["podman", "import", str(tar), image], check=True, capture_output=True)
    # crun refuses hybrid cgroup hierarchies with a controller on the v2 side (this VM:
    # cgroup v1 + hugetlb on v2); runc runs there. podman's default rlimits (nofile 1048576,
    # nproc 4194304) are above this VM's hard limits, and a crash needs RLIMIT_CORE > 1.
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    run = ["podman", *(["--runtime", "runc"] if shutil.which("runc") else []), "run",
           "--network", "none", f"--ulimit=nofile={nofile}:{nofile}", "--ulimit=nproc=4096:4096",
           "--ulimit=core=-1:-1"]
    probe = subprocess.run([*run, "--rm", image, "/bin/sh", "-c", "exit 0"], capture_output=True,
                           text=True, timeout=120)
    assert probe.returncode == 0, f"podman is installed but cannot run a container: {probe.stderr}"
    yield run, image
    subprocess.run(["podman", "rmi", "-f", image], capture_output=True)


def _podman(*args: str) -> str:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_podman_crash(hook, podman, tmp_path):  # type: ignore[no-untyped-def]
    hook.configure(postprocess=True)
    name, out = _token(), tmp_path / "out"
    out.mkdir()
    run, image = podman
    script = SCRIPT.format(t=name)
    try:
        hook.crash([*run, "--name", name, "-v", f"{out}:/out", image, "/bin/sh", "-c", script])
        cid = _podman("inspect", "--format", "{{.Id}}", name)
        assert re.fullmatch(r"[0-9a-f]{64}", cid)
        d = _expect_container_dir(hook, out, name, "podman", cid)
        assert element(d, "container_cmdline") == f"/bin/sh -c '{script}'"
        cgroup = element(d, "cgroup")
        assert f"libpod-{cid}" in cgroup
        # Post-processing ran after the container stopped and its overlay was unmounted: the
        # core alone gives the crash address but no function names.
        hook.wait_element(d, "core_backtrace")
        assert json.loads(element(d, "core_backtrace"))["stacktrace"][0]["frames"][0]["address"]
        # Mounting the (stopped) container again brings its files back: the saved core then
        # unwinds fully through them.
        merged = Path(_podman("mount", name))
        try:
            _check_core_through_rootfs(d, merged)
        finally:
            _podman("umount", name)
    finally:
        subprocess.run(["podman", "rm", "-f", name], capture_output=True)


def test_podman_live_detection_and_rootfs(podman):  # type: ignore[no-untyped-def]
    name = _token()
    run, image = podman
    before = _sleepers()
    started = subprocess.run([*run, "-d", "--name", name, image, "/bin/sh", "-c",
                              "/crasher sleep; exit 0"], capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    try:
        pid = _find_sleeper(before)
        info = _detect_live(pid)
        cid, merged, init = _podman("inspect", "--format",
                                    "{{.Id}} {{.GraphDriver.Data.MergedDir}} {{.State.Pid}}",
                                    name).split()
        assert (info.container, info.container_id) == ("podman", cid)
        assert info.container_pid == int(init)
        assert info.container_rootfs == merged
        assert Path(merged, "crasher").samefile(f"/proc/{pid}/root/crasher")
        assert info.rootdir is None
    finally:
        _reap_sleepers(before)
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True)


# ------------------------------------------------------------------ lxc

def _lxc_config(path: Path, rootfs: Path, name: str) -> Path:
    config = path / f"{name}.conf"
    # No template, no network, no image download: a hand-written config on our rootfs.
    config.write_text(f"lxc.uts.name = {name}\nlxc.rootfs.path = dir:{rootfs}\n"
                      "lxc.mount.auto = proc:rw sys:ro\nlxc.net.0.type = empty\n"
                      "lxc.apparmor.profile = unconfined\n"
                      "lxc.prlimit.core = unlimited\n")
    return config


def _lxc_execute(tmp_path: Path, rootfs: Path, name: str, *cmd: str) -> list[str]:
    _need("lxc-execute", "lxc")
    config = _lxc_config(tmp_path, rootfs, name)
    return ["lxc-execute", "-n", name, "-P", str(tmp_path), "-f", str(config), "--", *cmd]


def test_lxc_crash(hook, rootfs, tmp_path):  # type: ignore[no-untyped-def]
    name = _token()
    argv = _lxc_execute(tmp_path, rootfs, name, "/bin/sh", "-c", SCRIPT.format(t=name))
    hook.crash(argv)
    d = _expect_container_dir(hook, rootfs / "out", name, "lxc", name)
    assert f"lxc.payload.{name}" in element(d, "cgroup")
    _check_core_through_rootfs(d, rootfs)


def test_lxc_live_detection_and_rootfs(rootfs, tmp_path):  # type: ignore[no-untyped-def]
    _need_root()
    name = _token()
    before = _sleepers()
    proc = subprocess.Popen(_lxc_execute(tmp_path, rootfs, name, "/crasher", "sleep"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pid = _find_sleeper(before)
        info = _detect_live(pid)
        assert (info.container, info.container_id) == ("lxc", name)
        state = subprocess.run(["lxc-info", "-n", name, "-P", str(tmp_path), "-p", "-H"],
                               capture_output=True, text=True, timeout=30)
        assert info.container_pid == int(state.stdout.strip()), state.stderr
        assert info.container_rootfs is not None and Path(info.container_rootfs).samefile(rootfs)
    finally:
        _reap_sleepers(before)
        proc.kill()
        subprocess.run(["lxc-stop", "-k", "-n", name, "-P", str(tmp_path)], capture_output=True)
        proc.wait(timeout=30)


# ------------------------------------------------------------------ systemd-nspawn

def _nspawn(rootfs: Path, machine: str, *cmd: str) -> list[str]:
    _need("systemd-nspawn", "systemd-container")
    # --register=no --keep-unit: no machined or system bus needed (this VM has no systemd as
    # PID 1); the payload then runs in "<our cgroup>/payload", which names no runtime.
    return ["systemd-nspawn", "-q", "-D", str(rootfs), "--register=no", "--keep-unit",
            "-M", machine, "--rlimit=RLIMIT_CORE=infinity", *cmd]


def test_nspawn_crash(hook, rootfs):  # type: ignore[no-untyped-def]
    machine = _token()
    hook.crash(_nspawn(rootfs, machine, "/bin/sh", "-c", SCRIPT.format(t=machine)))
    d = _expect_container_dir(hook, rootfs / "out", machine, "systemd-nspawn", machine)
    _check_core_through_rootfs(d, rootfs)


def test_nspawn_live_detection_and_rootfs(rootfs):  # type: ignore[no-untyped-def]
    _need_root()
    machine = _token()
    before = _sleepers()
    proc = subprocess.Popen(_nspawn(rootfs, machine, "/bin/sh", "-c", "/crasher sleep; exit 0"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pid = _find_sleeper(before)
        info = _detect_live(pid)
        assert (info.container, info.container_id) == ("systemd-nspawn", machine)
        init = info.container_pid
        assert init is not None and init != pid
        assert procsnap.parse_status(Path(f"/proc/{init}/status").read_bytes())["NSpid"].split()[-1] == "1"
        assert info.container_rootfs is not None and Path(info.container_rootfs).samefile(rootfs)
    finally:
        _reap_sleepers(before)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------ chroot

def test_chroot_crash_records_rootdir(hook, rootfs):  # type: ignore[no-untyped-def]
    hook.configure(postprocess=True)
    pid, sig = hook.crash(["chroot", str(rootfs), "/crasher", "segv"])
    assert sig == signal.SIGSEGV
    [d] = hook.dirs()
    assert element(d, "rootdir") == str(rootfs.resolve())
    assert element(d, "executable") == str(rootfs.resolve() / "crasher")  # the host's path (abrt)
    assert not (d / "container").exists() and not (d / "container_id").exists()
    assert element(d, "pid") == element(d, "global_pid") == str(pid)
    assert "pid : default" in element(d, "namespaces")
    # The core's file notes name /crasher (the chroot's path); the rootdir element lets both
    # the detached post-processing and `crashkit backtrace DIR` find it.
    hook.wait_element(d, "crash_function")
    assert element(d, "crash_function") == "crash_write_null"
    assert _crash_frames(_backtrace(d))[:4] == FRAMES
    assert _gdb_frames(rootfs / "crasher", d / "coredump", rootfs)[:4] == FRAMES


# ------------------------------------------------------------------ pure parts, recorded text

def _recorded(path: Path) -> tuple[dict[str, str], str]:
    """(``# key: value`` header lines, the rest) of a recorded file."""
    header, body = {}, []
    for line in path.read_text().splitlines(keepends=True):
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            header[key.strip()] = value.strip()
        else:
            body.append(line)
    return header, "".join(body)


RECORDED = ["podman-runc-cgroupfs", "lxc-execute", "nspawn-keep-unit"]


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_cgroup_lines(name):  # type: ignore[no-untyped-def]
    header, text = _recorded(DATA / f"cgroup-{name}.txt")
    expected = header["expected"].split()
    found = container.parse_cgroup_container(text)
    if expected[0] == "none":
        assert found is None
    else:
        assert found == (expected[0], expected[1])


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_mountinfo_gives_the_rootfs_on_the_host(name):  # type: ignore[no-untyped-def]
    header, inside = _recorded(DATA / f"mountinfo-{name}-container.txt")
    _, host = _recorded(DATA / f"mountinfo-{name}-host.txt")
    assert container.host_rootfs(inside, host) == header["expected container_rootfs"]
    # The host's own table maps its / to itself: not a container root.
    assert container.host_rootfs(host, host) is None


@pytest.mark.parametrize("text, expected", [
    # systemd-nspawn registered with machined (systemd as PID 1): the payload sub-cgroup of the
    # machine scope, name unit-escaped (systemd.unit(5) escaping; systemd-nspawn(1) "--keep-unit")
    ("0::/machine.slice/machine-ck\\x2dweb.scope/payload\n", ("systemd-nspawn", "ck-web")),
    ("1:name=systemd:/machine.slice/machine-fedora.scope/payload/system.slice/foo.service\n",
     ("systemd-nspawn", "fedora")),
    # libvirt qemu guests' emulators run on the host; libvirt-lxc is lxc
    ("0::/machine.slice/machine-qemu\\x2d1\\x2dvm.scope/libvirt/emulator\n", None),
    ("0::/machine.slice/machine-lxc\\x2d4242\\x2dct1.scope\n", ("lxc", "ct1")),
    # podman with the systemd cgroup manager (crun/runc on cgroup v2)
    ("0::/machine.slice/libpod-" + "ab" * 32 + ".scope/container\n", ("podman", "ab" * 32)),
    # lxc before 4.0 and the lxc.payload/<name> layout of 4.0.0-4.0.x
    ("4:memory:/lxc/web1\n", ("lxc", "web1")),
    ("0::/lxc.payload/web1\n", ("lxc", "web1")),
    # OpenVZ 6 (/<CTID>) and Virtuozzo 7 (/machine.slice/<CTID or UUID>): vzctl/libvzctl cgroup
    # layout as documented by OpenVZ; no runtime on Debian to record them.
    ("3:cpu:/101\n", ("openvz", "101")),
    ("0::/machine.slice/1c3f6e4a-7e2b-4d5e-9a10-0b1c2d3e4f50\n",
     ("openvz", "1c3f6e4a-7e2b-4d5e-9a10-0b1c2d3e4f50")),
    ("9:name=systemd:/payload\n0::/payload\n", None),  # nspawn --keep-unit: no name in it
])
def test_cgroup_formats_without_a_runtime_here(text, expected):  # type: ignore[no-untyped-def]
    assert container.parse_cgroup_container(text) == expected


@pytest.mark.parametrize("environ, expected", [
    (b"PATH=/bin\0container=systemd-nspawn\0container_uuid=4b9a\0", "systemd-nspawn"),
    (b"container=podman\0", "podman"),
    (b"container=lxc\0", "lxc"),
    (b"container=lxc-libvirt\0", "lxc"),
    (b"container=rkt\0", "unknown"),
    (b"xcontainer=lxc\0PATH=/bin\0", None),
    (b"", None),
])
def test_kind_from_environ(environ, expected):  # type: ignore[no-untyped-def]
    assert container.kind_from_environ(environ) == expected


@pytest.mark.parametrize("argv, expected", [
    # the supervisor's command line as recorded in /proc (cgroup-nspawn-keep-unit.txt's run)
    (["systemd-nspawn", "-q", "-D", "/tmp/ckrootfs", "--register=no", "--keep-unit", "-M",
      "cknspawnrec", "/crasher", "sleep"], "cknspawnrec"),
    (["systemd-nspawn", "--machine=web", "-D", "/srv/x"], "web"),
    (["systemd-nspawn", "-Mweb", "/bin/sh"], "web"),
    (["systemd-nspawn", "--directory", "/var/lib/machines/deb12/", "/bin/sh", "-M", "no"], "deb12"),
    (["systemd-nspawn", "-qD/srv/fedora", "-u", "-M", "/bin/sh"], "fedora"),  # -u takes "-M"
    (["systemd-nspawn", "-i", "/images/arch.raw", "-b"], "arch"),
    (["systemd-nspawn", "--bind", "/x", "--", "-M", "y"], None),
    (["systemd-nspawn"], None),
    (["systemd-nspawn", "-M"], None),
])
def test_nspawn_machine_name(argv, expected):  # type: ignore[no-untyped-def]
    assert container.nspawn_machine_name(argv) == expected


def test_mountinfo_unescapes_octal():  # type: ignore[no-untyped-def]
    inside = "60 50 8:1 /srv/my\\040root / rw - ext4 /dev/sda1 rw\n"
    host = "20 1 8:1 / / rw - ext4 /dev/sda1 rw\n30 20 8:1 /srv /mnt/s\\011x rw - ext4 /dev/sda1 rw\n"
    assert container.parse_mountinfo(inside)[0].root == "/srv/my root"
    # the most specific host mount of that device wins
    assert container.host_rootfs(inside, host) == "/mnt/s\tx/my root"
    assert container.host_rootfs(inside, "20 1 8:2 / / rw - ext4 /dev/sdb1 rw\n") is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.text(max_size=300))
def test_mountinfo_parsers_never_raise(inside, host):  # type: ignore[no-untyped-def]
    container.host_rootfs(inside, host)
    container.kind_from_environ(inside.encode("utf-8", "surrogatepass"))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["-M", "-D", "-i", "-u", "-q", "--machine", "--bind", "--",
                                 "x", "/a/b.raw", "-qD", "--machine=", "-"]), max_size=8))
def test_nspawn_argv_parser_never_raises(argv):  # type: ignore[no-untyped-def]
    name = container.nspawn_machine_name(["systemd-nspawn", *argv])
    # (nspawn itself refuses machine names that are not valid host names)
    assert name is None or (isinstance(name, str) and name != "")
