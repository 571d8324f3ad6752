"""The libvirt and QEMU plugins: libvirt's real test driver (no daemon) through virsh and through
the libvirt Python binding (the same instances; the binding tests skip where libvirt-python is
not installed), a real QEMU started and stopped here, and the domain XML files of a host tree
(--root)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from statehelpers import fake_tool, need, qemu, token

from collectors.state import libvirtapi
from collectors.state.base import Context, Options
from collectors.state.collect import collect_state
from collectors.state.formats.libvirt import virsh_state
from collectors.state.plugins.libvirt import Libvirt

UUID = "6a0c2f3e-1b2d-4c5e-8f90-a1b2c3d4e5f6"
HOSTILE = "db \"x' \u202e<b> \u00e9"

# libvirt's test driver reads a node description: domains with test:runstate (5 = shut off)
NODE = """<node>
  <domain type='test'>
    <name>web one</name>
    <uuid>11111111-2222-3333-4444-555555555555</uuid>
    <memory unit='MiB'>512</memory>
    <vcpu>1</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
    <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='{disk}'/><target dev='vda' bus='virtio'/></disk></devices>
  </domain>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>db &quot;x&apos; &#x202e;&lt;b&gt; &#xe9;</name>
    <uuid>11111111-2222-3333-4444-666666666666</uuid>
    <memory unit='MiB'>256</memory>
    <vcpu>2</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
    <test:runstate>5</test:runstate>
  </domain>
</node>
"""


def _libvirt(**kw) -> dict:  # type: ignore[no-untyped-def]
    return collect_state(Options(**kw), ["libvirt"])["libvirt"].to_json()


def _need_binding():  # type: ignore[no-untyped-def]
    lv = libvirtapi.binding()
    if lv is None:
        if os.environ.get("CRASHKIT_REQUIRE_ROOT_TESTS", "") not in ("", "0"):
            pytest.fail("the libvirt Python binding is missing, but CI installs it "
                        "(.ci/deps: libvirt-dev; pip install '.[test,libvirt]')")
        pytest.skip("the libvirt Python binding (PyPI libvirt-python, built against Debian's "
                    "libvirt-dev) is not installed")
    return lv


@pytest.fixture(params=["virsh", "binding"])
def via(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test-driver test runs through virsh and through the Python binding."""
    if request.param == "virsh":
        need("virsh", "libvirt-clients")
        monkeypatch.setattr(Libvirt, "use_binding", False)
    else:
        _need_binding()
    return str(request.param)


@pytest.fixture
def virsh_only(monkeypatch: pytest.MonkeyPatch) -> None:
    need("virsh", "libvirt-clients")
    monkeypatch.setattr(Libvirt, "use_binding", False)


def test_test_driver_default_domain(via: str) -> None:
    result = _libvirt(libvirt_uri="test:///default")
    assert result["status"] == "present" and result["error"] is None
    [dom] = result["instances"]
    # the test driver's built-in domain (src/test/test_driver.c defaultDomainXML)
    assert (dom["name"], dom["state"], dom["native_state"]) == ("test", "running", "running")
    assert dom["uuid"] == "6695eb01-f6a4-8304-79aa-97f2502e193f"
    assert dom["memory"] == {"limit": 8388608 * 1024, "usage": 2097152 * 1024}
    assert dom["cpu"]["limit"] == 2 and dom["cpu"]["usage_seconds"] > 0
    assert dom["disks"][0]["path"] == "/guest/diskimage1" and dom["autostart"] is False
    assert dom["extra"]["macs"] == ["aa:bb:cc:dd:ee:ff"]
    assert dom["resources_from"] == {"virsh": "virsh", "binding": "libvirt API"}[via]


def test_test_driver_custom_node_with_a_hostile_name(tmp_path: Path, via: str) -> None:
    disk = tmp_path / "web.qcow2"
    disk.write_bytes(b"\0" * 8192)
    node = tmp_path / "node.xml"
    node.write_text(NODE.format(disk=disk))
    result = _libvirt(libvirt_uri=f"test://{node}")
    by_name = {d["name"]: d for d in result["instances"]}
    assert set(by_name) == {"web one", HOSTILE}
    assert by_name[HOSTILE]["state"] == "stopped" and by_name[HOSTILE]["native_state"] == "shut off"
    web = by_name["web one"]
    assert web["state"] == "running" and web["disks"][0]["path"] == str(disk)
    assert web["disks"][0]["size"] == 8192 and web["disks"][0]["format"] == "qcow2"
    json.loads(json.dumps(result))


def _instances(uri: str, binding: bool) -> list[dict]:  # type: ignore[type-arg]
    plugin = Libvirt()
    plugin.use_binding = binding
    return sorted((i.to_json() for i in plugin.collect(Context(Options(libvirt_uri=uri)))),
                  key=lambda d: d["id"])


def test_the_binding_gives_what_virsh_gives(tmp_path: Path) -> None:
    """Field for field, but the CPU time (the test driver's is the clock: it moves between
    the two reads) and resources_from, which names the source."""
    need("virsh", "libvirt-clients")
    _need_binding()
    disk = tmp_path / "web.qcow2"
    disk.write_bytes(b"\0" * 8192)
    node = tmp_path / "node.xml"
    node.write_text(NODE.format(disk=disk))
    for uri in ("test:///default", f"test://{node}"):
        by_virsh, by_binding = _instances(uri, False), _instances(uri, True)
        assert [d["id"] for d in by_virsh] == [d["id"] for d in by_binding] != []
        for a, b in zip(by_virsh, by_binding, strict=True):
            cpu_a, cpu_b = a.pop("cpu"), b.pop("cpu")
            assert cpu_a["limit"] == cpu_b["limit"]
            assert (cpu_a["usage_seconds"] is None) == (cpu_b["usage_seconds"] is None)
            if cpu_a["usage_seconds"] is not None:
                assert abs(cpu_a["usage_seconds"] - cpu_b["usage_seconds"]) < 60
            assert (a.pop("resources_from"), b.pop("resources_from")) == ("virsh", "libvirt API")
            assert a == b


@pytest.mark.parametrize("ops", [["suspend"], ["destroy"], ["shutdown"], ["suspend", "resume"],
                                 ["destroy", "create"]])
def test_state_words_are_virshs(tmp_path: Path, ops: list[str]) -> None:
    """The binding's numbers worded as virsh words them, after the same operations on the
    test driver (a node file of its own: test:///default keeps its state per process)."""
    need("virsh", "libvirt-clients")
    lv = _need_binding()
    node = tmp_path / "node.xml"
    node.write_text(NODE.format(disk=tmp_path / "none.qcow2"))
    uri = f"test://{node}"
    virsh_ops = {"create": "start"}
    batch = "; ".join(f"{virsh_ops.get(op, op)} 'web one'" for op in ops) + "; domstate --reason 'web one'"
    printed = subprocess.run(["virsh", "-c", uri, batch], capture_output=True, text=True, check=True)
    words = [ln for ln in printed.stdout.splitlines() if ln.strip()][-1]
    conn = lv.open(uri)
    try:
        dom = conn.lookupByName("web one")
        for op in ops:
            getattr(dom, op)()
        state, reason = virsh_state(*dom.state())
    finally:
        conn.close()
    assert f"{state} ({reason})" == words


def test_unreachable_explicit_uri_through_the_binding_is_an_error() -> None:
    _need_binding()
    result = _libvirt(libvirt_uri="qemu+unix:///system?socket=/nonexistent/sock", timeout=20)
    assert result["status"] == "error" and result["error"].startswith("libvirt: Failed to connect")


@pytest.mark.slow
def test_a_daemon_that_never_answers_is_cut_at_the_timeout(tmp_path: Path) -> None:
    """A socket that accepts and never speaks: the binding waits for libvirt's handshake, the
    plugin gives up at its timeout."""
    _need_binding()
    path = tmp_path / "hung.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    try:
        start = time.monotonic()
        result = _libvirt(libvirt_uri=f"qemu+unix:///system?socket={path}", timeout=1)
        assert time.monotonic() - start < 5
        assert (result["status"], result["error"]) == ("error", "libvirt: timed out after 1 s")
    finally:
        server.close()      # the abandoned call now sees EOF and ends


def test_default_uri_without_a_daemon_is_absent(via: str) -> None:
    if any(Path(p).exists() for p in ("/run/libvirt/libvirt-sock", "/run/libvirt/virtqemud-sock")):
        pytest.skip("a libvirt daemon runs here")
    assert _libvirt()["status"] == "absent"


def test_unreachable_explicit_uri_is_an_error(virsh_only: None) -> None:
    result = _libvirt(libvirt_uri="qemu+unix:///system?socket=/nonexistent/sock", timeout=20)
    assert result["status"] == "error" and result["error"].startswith("virsh: exit status 1")


def test_malformed_xml_from_virsh_is_an_error(tmp_path: Path, virsh_only: None) -> None:
    bindir = tmp_path / "bin"
    # a virsh that lists one domain and answers the batch with broken XML
    fake_tool(bindir, "virsh", f"""case "$*" in
  *"list --all --uuid"*) echo {UUID} ;;
  *) mark=$(echo "$*" | sed -n 's/.*echo \\(ck[0-9a-f]*\\) info.*/\\1/p')
     echo "$mark info {UUID}"; echo "Name: x"; echo "$mark state {UUID}"; echo "running"
     echo "$mark xml {UUID}"; echo "<domain><name>x</name" ;;
esac
""")
    result = _libvirt(libvirt_uri="test:///default", path=str(bindir))
    assert result["status"] == "error" and "malformed domain XML" in result["error"]


STATUS_XML = """<domstatus state='running' reason='booted' pid='{pid}'>
  <monitor path='/var/lib/libvirt/qemu/domain-1-{name}/monitor.sock' type='unix'/>
  <domain type='kvm' id='1'>
    <name>{name}</name><uuid>{uuid}</uuid>
    <memory unit='KiB'>1048576</memory><vcpu placement='static'>2</vcpu>
    <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>
  </domain>
</domstatus>
"""


def test_domain_files_under_root(tmp_path: Path) -> None:
    conf = tmp_path / "etc/libvirt/qemu"
    (conf / "autostart").mkdir(parents=True)
    run = tmp_path / "run/libvirt/qemu"
    run.mkdir(parents=True)
    (conf / "vm1.xml").write_text(f"<domain type='kvm'><name>vm1</name><uuid>{UUID}</uuid>"
                                  "<memory unit='GiB'>1</memory><vcpu>2</vcpu></domain>")
    (conf / "autostart/vm1.xml").symlink_to("../vm1.xml")
    (conf / "vm2.xml").write_text("<domain type='kvm'><name>vm2</name><vcpu>1</vcpu></domain>")
    (run / "vm1.xml").write_text(STATUS_XML.format(pid=4242, name="vm1", uuid=UUID))
    result = collect_state(Options(root=str(tmp_path)), ["libvirt"])["libvirt"].to_json()
    by_name = {d["name"]: d for d in result["instances"]}
    assert by_name["vm1"]["state"] == "running" and by_name["vm1"]["init_pid"] == 4242
    assert by_name["vm1"]["autostart"] is True and by_name["vm1"]["memory"]["limit"] == 1 << 30
    assert by_name["vm1"]["extra"]["reason"] == "booted"
    assert by_name["vm2"]["state"] == "stopped" and by_name["vm2"]["autostart"] is False
    (run / "vm3.xml").write_text("<domstatus state='running'><domain><name>vm3")
    bad = collect_state(Options(root=str(tmp_path)), ["libvirt"])["libvirt"]
    assert bad.status == "error" and "vm3.xml" in (bad.error or "")


def test_unmanaged_qemu_process() -> None:
    name = token()
    with qemu("-name", name, "-uuid", UUID, "-m", "64", "-smp", "1") as proc:
        result = collect_state(Options(), ["qemu"])["qemu"].to_json()
        [vm] = [i for i in result["instances"] if i["init_pid"] == proc.pid]
        assert (vm["id"], vm["name"], vm["uuid"], vm["state"]) == (name, name, UUID, "running")
        assert vm["memory"]["limit"] == 64 << 20 and vm["cpu"]["limit"] == 1
        assert vm["extra"]["cpu_stopped_at_start"] is True and vm["started_at"].endswith("Z")
        with qemu("-name", f"guest={name}x,debug-threads=on") as managed:
            pids = [i.init_pid for i in collect_state(Options(), ["qemu"])["qemu"].instances]
            assert proc.pid in [i["init_pid"] for i in result["instances"]]
            assert managed.pid not in pids  # libvirt's -name guest= syntax: libvirt owns it
