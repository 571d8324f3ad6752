"""The cleaner: each kind of name and secret, one consistent mapping, the safety filter that
always runs; and ``diagnose --clean`` end to end (bundle and report agree, the mapping file
stays outside the archive)."""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path

import pytest
from diaghelpers import PEM, add_hostile_dir, crashkit, manifest, read_bundle

from collectors.diagnose.clean import Cleaner, learn_names, redact_private_keys

TEXT = (b"May 20 12:00:01 web1.corp.example.com sshd[1]: Accepted publickey for alice from 192.168.1.17 port 22\n"
        b"db7.corp.example.com is at 10.0.3.4 (52:54:00:12:34:56) via fe80::5054:ff:fe12:3456%eth0\n"
        b"lo 127.0.0.1/8 ::1 mask 255.255.255.0 bcast 0.0.0.0 version 6.1.0\n"
        b"DB_PASSWORD=hunter2 api_key: \"k-123\" {\"token\": \"abc.def\"} Authorization: Bearer xyz789\n"
        b"GET https://bob:s3cret@mirror.corp.example.com/x?id=1&token=qqq HTTP/1.1\n"
        b"alice again, malice stays, 192.168.1.17 again, corp.example.com alone\n")


def _cleaner() -> Cleaner:
    return Cleaner(["web1.corp.example.com", "web1"], ["corp.example.com"], ["alice"])


def test_every_kind_is_replaced_consistently() -> None:
    c = _cleaner()
    out = c.clean(TEXT).decode()
    for secret in ("web1", "db7", "corp.example.com", "alice", "192.168.1.17", "10.0.3.4", "52:54:00:12:34:56",
                   "fe80::5054", "hunter2", "k-123", "abc.def", "xyz789", "s3cret", "qqq", "bob:"):
        assert not re.search(r"(?<![\w-])" + re.escape(secret), out), (secret, out)
    m = c.mapping.maps
    ip = m["ipv4"]["192.168.1.17"]
    assert out.count(ip) == 2 and ip.startswith("100.")
    assert f"{m['hostname']['web1']}.{m['domain']['corp.example.com']}" in out
    assert f"{m['hostname']['db7']}.{m['domain']['corp.example.com']}" in out
    assert out.count(m["username"]["alice"]) == 2 and "malice" in out
    assert m["mac"]["52:54:00:12:34:56"] in out and m["ipv6"]["fe80::5054:ff:fe12:3456"] in out
    for kept in ("127.0.0.1/8", "::1", "255.255.255.0", "0.0.0.0", "version 6.1.0"):
        assert kept in out
    assert out.count("********") >= 6
    assert c.clean(TEXT).decode() == out          # the mapping is stable


@pytest.mark.slow
def test_chunks_and_threads_share_one_mapping() -> None:
    from concurrent.futures import ThreadPoolExecutor

    c = _cleaner()
    big = TEXT * 30000                            # > 1 MiB: several chunks
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(c.clean, [big, TEXT, big]))
    assert outs[0] == outs[2] and outs[0].startswith(outs[1])
    assert len(c.mapping.maps["ipv4"]) == 2


def test_private_keys_always_go() -> None:
    data = b"before\n" + PEM.encode() + b"after\n-----BEGIN RSA PRIVATE KEY-----\nMIIEunterminated"
    out = redact_private_keys(data)
    assert b"b3BlbnNzaC1r" not in out and b"MIIE" not in out and out.startswith(b"before\n")
    assert out.count(b"[removed by crashkit]") == 2


def test_names_learned_from_the_host_files() -> None:
    hosts, domains, users = learn_names(
        "web1", "web1.corp.example.com", "127.0.0.1 localhost\n10.0.0.9 db7.corp.example.com db7\n",
        "search corp.example.com lab.example.org\n",
        "root:x:0:0::/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\nnobody:x:65534:65534::/:/usr/sbin/nologin\n")
    assert hosts == {"web1", "web1.corp.example.com", "db7.corp.example.com", "db7"}
    assert domains == {"corp.example.com", "lab.example.org"}
    assert users == {"alice"}


def test_diagnose_clean_end_to_end(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    add_hostile_dir(spool, None)
    out = tmp_path / "out"
    out.mkdir()
    res = crashkit("diagnose", "--clean", "-o", str(out / "c.tar.gz"), "--spool", str(spool), "--since", "2020-01-01")
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(out)) == ["c.tar.gz", "c.tar.gz.mapping.json"]
    mapping_file = out / "c.tar.gz.mapping.json"
    assert (mapping_file.stat().st_mode & 0o777) == 0o600
    mapping = json.loads(mapping_file.read_text())
    members = read_bundle(out / "c.tar.gz")
    assert not any("mapping" in name for name in members)
    assert manifest(members)["cleaned"] is True
    blob = b"\n".join(members.values())
    host = socket.gethostname()
    stand_in = mapping["hostname"][host.lower()]
    assert not re.search(rb"(?<![\w-])" + re.escape(host.encode()) + rb"(?![\w-])", blob)
    assert members["sections/host/proc_sys_kernel_hostname"].strip() == stand_in.encode()
    report = members["report.html"].decode()
    assert f"crashkit diagnose: {stand_in}" in report
    ip = mapping["ipv4"]["10.1.2.3"]
    problem = members["sections/problems/ccpp-2026-12-01-10:00:00.1-4242.json"].decode()
    assert ip in problem and "10.1.2.3" not in problem and "hunter2" not in problem
    assert b"10.1.2.3" not in blob and b"hunter2" not in blob
