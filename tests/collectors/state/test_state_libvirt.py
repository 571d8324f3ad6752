"""The libvirt and QEMU plugins: libvirt's real test driver through virsh (no daemon), a real
QEMU started and stopped here, and the domain XML files of a host tree (--root)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from statehelpers import fake_tool, need, qemu, token

from collectors.state.base import Options
from collectors.state.collect import collect_state

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


def test_test_driver_default_domain() -> None:
    need("virsh", "libvirt-clients")
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


def test_test_driver_custom_node_with_a_hostile_name(tmp_path: Path) -> None:
    need("virsh", "libvirt-clients")
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


def test_default_uri_without_a_daemon_is_absent() -> None:
    need("virsh", "libvirt-clients")
    if any(Path(p).exists() for p in ("/run/libvirt/libvirt-sock", "/run/libvirt/virtqemud-sock")):
        pytest.skip("a libvirt daemon runs here")
    assert _libvirt()["status"] == "absent"


def test_unreachable_explicit_uri_is_an_error() -> None:
    need("virsh", "libvirt-clients")
    result = _libvirt(libvirt_uri="qemu+unix:///system?socket=/nonexistent/sock", timeout=20)
    assert result["status"] == "error" and result["error"].startswith("virsh: exit status 1")


def test_malformed_xml_from_virsh_is_an_error(tmp_path: Path) -> None:
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
