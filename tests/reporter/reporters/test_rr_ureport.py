"""uReport: satyr's exact report for satyr's problem directory, python and kerneloops reports,
and reporter-crashkit-ureport against crashkit serve's FAF endpoints."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from rr_helpers import TOKEN
from rr_helpers import FaultProxy, Serve, copy_problem, make_min_dir

from reporter.dumpdir import DumpDir
from reporter.outbox import Outbox
from reporter.reporters import ureport, ureport_build, ureport_koops, ureport_python
from reporter.reporters.flush import flush

PY_TRACEBACK = '''test.py:3:<module>:ZeroDivisionError: division by zero

Traceback (most recent call last):
  File "/usr/bin/tool", line 12, in <module>
    main()
  File "/usr/lib/python3/site-packages/tool/cli.py", line 40, in main
    return compute(args)
  File "<string>", line 1, in compute
ZeroDivisionError: division by zero

Local variables in innermost frame:
x: 1
'''

OOPS = '''BUG: unable to handle kernel NULL pointer dereference at 0000000000000008
IP: [<ffffffffa0123456>] nouveau_fence_new+0x12/0x80 [nouveau]
PGD 0
Oops: 0000 [#1] SMP
Modules linked in: nouveau(O) ttm drm_kms_helper e1000e
CPU: 1 PID: 733 Comm: Xorg Tainted: G        W  O 3.10.0-123.el7.x86_64 #1
RIP: 0010:[<ffffffffa0123456>]  [<ffffffffa0123456>] nouveau_fence_new+0x12/0x80 [nouveau]
Call Trace:
 [<ffffffffa0124000>] nouveau_gem_ioctl_pushbuf+0x100/0x1a0 [nouveau]
 [<ffffffff811b1234>] ? kmem_cache_alloc+0x30/0x200
 [<ffffffff81200000>] drm_ioctl+0x50/0x100
 <IRQ>
 [<ffffffff81300000>] handle_irq+0x10/0x20
 <EOI>
 [<ffffffff81400000>] system_call_fastpath+0x16/0x1b
Code: 48 89 e5 41 57
'''


def _pairs(doc: Any) -> Any:
    return json.loads(json.dumps(doc), object_pairs_hook=lambda p: p)


def _elements(path: Path) -> dict[str, str]:
    with DumpDir.open(str(path), readonly=True) as dd:
        return {n: dd.load_text(n) for n in dd.list_elements()}


def test_satyr_golden_report(fixtures_dir: Path) -> None:
    built = ureport_build.build(_elements(fixtures_dir / "satyr-problem-dir"))
    expected = json.loads((fixtures_dir / "satyr-ureport" / "ureport-from-problem-dir").read_text(),
                          object_pairs_hook=lambda p: p)
    got = _pairs(built)
    # the reporter object is ours; everything else, keys in their order, is satyr's
    assert [k for k, _ in got] == [k for k, _ in expected]
    assert [kv for kv in got if kv[0] != "reporter"] == [kv for kv in expected if kv[0] != "reporter"]
    assert built["reporter"] == {"name": "crashkit", "version": ureport_build.REPORTER_VERSION}


def test_packages_sorted_and_merged_like_satyr() -> None:
    text = ("/lib/b.so b-1-1.x86_64 (V) 200\n/lib/a.so a-2-1.x86_64 (V) 100\n/bin/p p-1.0-3.fc1.x86_64 (V) 300\n"
            "/lib/e.so 1:e-1-1.x86_64 (V) 7\n/lib/broken.so nonevra (V) 5\n/last/line x-1-1.noarch (V) 9")
    pkgs = ureport_build.packages_from({"pkg_name": "p", "pkg_epoch": "0", "pkg_version": "1.0", "pkg_release": "3.fc1",
                                        "pkg_arch": "x86_64", "dso_list": text})
    assert [p.to_json() for p in pkgs] == [
        {"name": "a", "epoch": 0, "version": "2", "release": "1", "architecture": "x86_64", "install_time": 100},
        {"name": "b", "epoch": 0, "version": "1", "release": "1", "architecture": "x86_64", "install_time": 200},
        {"name": "e", "epoch": 1, "version": "1", "release": "1", "architecture": "x86_64", "install_time": 7},
        {"name": "p", "epoch": 0, "version": "1.0", "release": "3.fc1", "architecture": "x86_64",
         "install_time": 300, "package_role": "affected"}]
    assert ureport_build.packages_from({"dso_list": text}) == []


def test_python_report() -> None:
    name, frames = ureport_python.parse(PY_TRACEBACK)
    assert name == "ZeroDivisionError"
    assert frames == [{"special_file": "string", "file_line": 1, "function_name": "compute"},
                      {"file_name": "/usr/lib/python3/site-packages/tool/cli.py", "file_line": 40,
                       "function_name": "main", "line_contents": "return compute(args)"},
                      {"file_name": "/usr/bin/tool", "file_line": 12, "special_function": "module",
                       "line_contents": "main()"}]
    report = ureport_build.build({"type": "Python3", "os_info": "ID=debian\nVERSION_ID=\"12\"\n",
                                  "architecture": "x86_64", "executable": "/usr/bin/tool", "backtrace": PY_TRACEBACK})
    assert report["reason"] == "ZeroDivisionError in /usr/bin/tool:12"
    assert report["problem"]["component"] == "tool-unpackaged" and report["problem"]["type"] == "python"
    assert report["os"] == {"name": "debian", "version": "12", "architecture": "x86_64"}
    with pytest.raises(ValueError):
        ureport_python.parse("no traceback here\n")


def test_kerneloops_report() -> None:
    frames = ureport_koops.parse_frames(OOPS)
    assert frames[0]["function_name"] == "nouveau_fence_new" and frames[0]["module_name"] == "nouveau"
    assert [f["function_name"] for f in frames[1:]] == ["nouveau_gem_ioctl_pushbuf", "kmem_cache_alloc",
                                                        "drm_ioctl", "handle_irq", "system_call_fastpath"]
    assert frames[2]["reliable"] is False and frames[4]["special_stack"] == "irq"
    assert "special_stack" not in frames[5]
    report = ureport_build.build({"type": "Kerneloops", "os_info": "ID=rhel\nVERSION_ID=7.0\n", "architecture": "x86_64",
                                  "kernel": "3.10.0-123.el7.x86_64", "backtrace": OOPS, "count": "3"})
    p = report["problem"]
    assert p["component"] == "kernel" and p["serial"] == 3 and "user" not in p
    assert p["taint_flags"] == ["warning", "module_out_of_tree"]
    assert p["modules"] == ["nouveau(O)", "ttm", "drm_kms_helper", "e1000e"]
    assert report["reason"] == "BUG: unable to handle kernel NULL pointer dereference at 0000000000000008"
    gpf = "general protection fault: 0000 [#1] SMP\n" + OOPS.split("\n", 1)[1]
    assert ureport_koops.reason(gpf, ureport_koops.parse_frames(gpf)) == "general protection fault in nouveau_fence_new [nouveau]"


def test_submit_known_attach_and_auth(serve: Serve, fixtures_dir: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    d = copy_problem(fixtures_dir, "satyr-problem-dir", tmp_path)
    with DumpDir.open(str(d)) as dd:  # a crash of its own: not one the (shared) server knows
        bt = json.loads(dd.load_text("core_backtrace"))
        frame = bt["stacktrace"][0]["frames"][0]  # the duphash is of build ids and offsets
        frame["function_name"] = f"ureport_test_only_{uuid.uuid4().hex}"
        frame["build_id_offset"] += 1 + uuid.uuid4().int % 4096
        dd.save_text("core_backtrace", json.dumps(bt))
    server = f"{serve.url}/faf"
    monkeypatch.setenv("uReport_HTTPAuth", f"h:{TOKEN}")
    assert ureport.main(["-d", str(d), "-u", server]) == 0
    lines = (d / "reported_to").read_text().splitlines()
    bthash = lines[0].removeprefix("uReport: BTHASH=")
    assert len(bthash) == 40 and lines[1] == f"ABRT Server: URL={server}/reports/bthash/{bthash}"
    assert (d / "ureports_counter").read_text() == "1"
    # the second time the problem is known: exit 70, the server's link recorded
    assert ureport.main(["-d", str(d), "-u", server]) == 70
    assert any(line.startswith("ABRT Server: URL=") and "/buckets/" in line
               for line in (d / "reported_to").read_text().splitlines())
    # attachments to the bthash of reported_to
    assert ureport.main(["-d", str(d), "-u", server, "-A", "-o", "seen twice", "-b", "1234"]) == 0
    out, err = capfd.readouterr()
    assert TOKEN not in out + err
    # without the credential: 401, final, recorded
    monkeypatch.delenv("uReport_HTTPAuth")
    assert ureport.main(["-d", str(d), "-u", server]) == 1
    failed = Outbox(os.environ["CRASHKIT_OUTBOX"]).entries("failed")
    assert failed[-1].last_status == 401


def test_python_and_oops_dirs_accepted_and_500_then_202(serve: Serve, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("uReport_HTTPAuth", f"h:{TOKEN}")
    proxy = FaultProxy(serve.url)
    try:
        py = make_min_dir(tmp_path, "py", {"type": "Python3", "os_info": "ID=debian\nVERSION_ID=12\n",
                                           "executable": "/usr/bin/tool", "backtrace": PY_TRACEBACK})
        oops = make_min_dir(tmp_path, "oops", {"type": "Kerneloops", "os_info": "ID=debian\nVERSION_ID=12\n",
                                               "kernel": "6.1.0-18-amd64", "backtrace": OOPS})
        assert ureport.main(["-d", str(py), "-u", f"{serve.url}/faf"]) == 0
        proxy.plan = [500]
        assert ureport.main(["-d", str(oops), "-u", f"{proxy.url}/faf"]) == 75
        assert flush(Outbox(os.environ["CRASHKIT_OUTBOX"])).delivered == 1
        assert "uReport: BTHASH=" in (oops / "reported_to").read_text()
        assert proxy.seen == 2
    finally:
        proxy.stop()
