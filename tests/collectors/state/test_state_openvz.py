"""The OpenVZ/Virtuozzo plugin on fixtures that follow vzlist's, prlctl's and the kernel's
documented output (data/README.md): through fake ``vzlist``/``prlctl`` tools printing them,
and as a host tree under --root (``/etc/vz/conf``, ``/proc/vz``, ploop descriptors)."""

from __future__ import annotations

import shutil
from pathlib import Path

from statehelpers import DATA, fake_tool

from collectors.state.base import Options
from collectors.state.collect import collect_state
from collectors.state.formats import openvz as fmt

OVZ = DATA / "openvz"


def _openvz(**kw) -> dict:  # type: ignore[no-untyped-def]
    return collect_state(Options(**kw), ["openvz"])["openvz"].to_json()


def _tool(tmp_path: Path, name: str, fixture: str) -> str:
    bindir = tmp_path / "bin"
    fake_tool(bindir, name, f'cat "{OVZ / fixture}"\n')
    return str(bindir)


def test_vzlist_json(tmp_path: Path) -> None:
    result = _openvz(path=_tool(tmp_path, "vzlist", "vzlist-a-j.json"))
    assert result["status"] == "present", result["error"]
    web, db = result["instances"][1], result["instances"][0]
    assert (web["id"], web["name"], web["state"], web["os"]) == ("101", "web", "running", "centos-7-x86_64")
    assert web["ips"] == ["10.0.0.101"] and web["autostart"] is True
    assert web["cpu"]["limit"] == 0.5
    assert web["memory"] == {"limit": 262144 * 4096, "usage": 12345 * 4096}
    assert web["extra"]["findings"] == [{"resource": "numproc", "held": 37, "maxheld": 240,
                                         "barrier": 240, "limit": 240, "failcnt": 12}]
    assert (db["id"], db["name"], db["state"], db["memory"]["usage"]) == ("102", "db.example.com", "stopped", None)
    assert db["extra"]["findings"] == []


def test_vzlist_unescaped_name_is_an_error(tmp_path: Path) -> None:
    result = _openvz(path=_tool(tmp_path, "vzlist", "vzlist-a-j-unescaped-name.json"))
    assert result["status"] == "error" and result["error"].startswith("malformed JSON from vzlist -j")


def test_prlctl_json(tmp_path: Path) -> None:
    result = _openvz(path=_tool(tmp_path, "prlctl", "prlctl-list-a-i-j.json"))
    assert result["status"] == "present", result["error"]
    found = {i["name"]: i for i in result["instances"]}
    vm, ct = found["win2019"], found["mail"]
    assert (vm["uuid"], vm["state"], vm["extra"]["type"]) == ("8f4b5a9e-6c2d-4e1f-9a3b-2c1d0e9f8a7b", "running", "VM")
    assert vm["memory"]["limit"] == 8192 << 20 and vm["cpu"]["limit"] == 4 and vm["ips"] == ["10.0.0.50"]
    assert vm["disks"][0]["size"] == 65536 << 20 and vm["autostart"] is True
    assert vm["config"].endswith("/config.pvs")
    assert (ct["state"], ct["extra"]["type"], ct["autostart"]) == ("stopped", "CT", False)
    assert ct["id"] == "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"


def test_host_tree_under_root(tmp_path: Path) -> None:
    root = tmp_path / "host"
    (root / "etc/vz/conf").mkdir(parents=True)
    for name in ("101.conf", "102.conf"):
        shutil.copy(OVZ / name, root / "etc/vz/conf" / name)
    (root / "etc/vz/conf/ve-vswap-1g.conf-sample").write_text("PHYSPAGES=0:1G\n")
    shutil.copy(OVZ / "vz.conf", root / "etc/vz/vz.conf")
    (root / "proc/vz").mkdir(parents=True)
    shutil.copy(OVZ / "veinfo", root / "proc/vz/veinfo")
    shutil.copy(OVZ / "user_beancounters", root / "proc/user_beancounters")
    hdd = root / "vz/private/101/root.hdd"
    hdd.mkdir(parents=True)
    shutil.copy(OVZ / "DiskDescriptor.xml", hdd / "DiskDescriptor.xml")
    (hdd / "root.hds").write_bytes(b"\x01" * (1 << 20))
    (root / "vz/private/102/etc").mkdir(parents=True)
    (root / "vz/private/102/etc/hostname").write_text("db\n")
    result = _openvz(root=str(root))
    assert result["status"] == "present", result["error"]
    found = {i["id"]: i for i in result["instances"]}
    assert set(found) == {"101", "102"}
    web, db = found["101"], found["102"]
    assert (web["name"], web["state"], web["extra"]["numproc"]) == ("web", "running", 37)
    assert web["disks"][0]["format"] == "ploop" and web["disks"][0]["size"] == 20971520 * 512
    assert web["disks"][0]["usage"] >= 1 << 20
    assert [f["resource"] for f in web["extra"]["findings"]] == ["numproc", "swappages"]
    assert web["memory"] == {"limit": 262144 * 4096, "usage": 12345 * 4096}
    assert web["config"] == "/etc/vz/conf/101.conf" and web["autostart"] is True
    assert (db["state"], db["memory"]["limit"], db["disks"][0]["format"]) == ("stopped", 1 << 30, "simfs")


def test_parsers_on_the_fixtures() -> None:
    counters = fmt.parse_beancounters((OVZ / "user_beancounters").read_text())
    assert counters["0"]["numproc"]["held"] == 112 and len(counters["101"]) == 21
    assert fmt.parse_veinfo((OVZ / "veinfo").read_text()) == {"101": (37, ["10.0.0.101"])}
    desc = fmt.parse_disk_descriptor((OVZ / "DiskDescriptor.xml").read_bytes())
    assert desc.images == ("root.hds",) and desc.blocksize == 2048
    conf = fmt.parse_conf((OVZ / "101.conf").read_text(), {"VEID": "101"})
    assert conf["VE_PRIVATE"] == "/vz/private/101" and conf["NAME"] == "web"
    assert fmt.conf_pages("0:512M") == 512 << 20 and fmt.conf_pages("unlimited") is None
