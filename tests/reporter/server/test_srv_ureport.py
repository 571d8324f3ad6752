"""uReport parsing and satyr's bthash, checked against satyr's own test vector and fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reporter.server.bthash import bthash, core_bthash_text
from reporter.server.classify import classify_ureport
from reporter.server.errors import RejectedInput
from reporter.server.ureport import parse, parse_attachment

LIMITS = {"max_bytes": 512 * 1024, "max_depth": 64}


def test_satyr_core_bthash_vector(fixtures_dir: Path) -> None:
    """satyr's python test (tests/python/core.py) expects this bthash for json_files/core-01."""
    doc = json.loads((fixtures_dir / "satyr-ureport" / "core-01").read_text())
    assert bthash({**doc, "type": "core"}) == "6ebee2edb486ee24a3280c18b0db5353bbc22014"
    text = core_bthash_text(doc)
    assert text.startswith("Executable: /usr/bin/will_abort\nSignal: 6\n\n0x15666, 92eb")
    assert "\n\n0x3739a35935, cc10c72da62c93033e227ffbe2670f2c4fbbde1a+0x35935, /usr/lib64/libc-2.15.so, f331" in text


@pytest.mark.parametrize("name", ["ureport-from-problem-dir", "ureport-1", "ureport-1-auth"])
def test_satyr_ureports_are_accepted(fixtures_dir: Path, name: str) -> None:
    raw = (fixtures_dir / "satyr-ureport" / name).read_bytes()
    report = parse(raw, **LIMITS)
    doc = json.loads(raw)
    assert report.kind == "core" and report.reason == doc["reason"]
    assert report.bthash == bthash(doc["problem"])
    assert report.packages and report.packages[0].startswith("coreutils-")
    assert report.host == ("localhost" if name.endswith("auth") else None)
    facts = classify_ureport(report)
    assert facts.kind == "core" and len(facts.duphash) == 40 and facts.crash_function


def test_core_ureport_buckets_with_its_problem_dir(fixtures_dir: Path) -> None:
    """The uReport satyr made from a problem directory lands in that directory's bucket."""
    import io

    from srv_helpers import make_archive

    from reporter.server.archive import ArchiveLimits, validate
    from reporter.server.classify import classify_bundle

    src = fixtures_dir / "satyr-problem-dir"
    archive = make_archive({p.name: p.read_bytes() for p in sorted(src.iterdir()) if p.is_file()})
    bundle = classify_bundle(validate(io.BytesIO(archive), ArchiveLimits()))
    ureport = classify_ureport(parse((fixtures_dir / "satyr-ureport" / "ureport-from-problem-dir").read_bytes(), **LIMITS))
    assert bundle.duphash == ureport.duphash and bundle.kind == ureport.kind == "core"
    assert bundle.bthash == ureport.bthash


def _refused(data: bytes, match: str, status: int = 400) -> None:
    with pytest.raises(RejectedInput, match=match) as info:
        parse(data, **LIMITS)
    assert info.value.status == status and "\n" not in str(info.value)


def test_invalid_ureports(fixtures_dir: Path) -> None:
    good = json.loads((fixtures_dir / "satyr-ureport" / "ureport-1").read_text())
    _refused(b"{not json", "not valid JSON")
    _refused(b"[" * 10_000 + b"]" * 10_000, "nested more than 64 levels")
    _refused(b'{"a": ' * 10_000 + b"1" + b"}" * 10_000, "nested more than 64 levels")
    _refused(b"\xff\xfe{}", "not UTF-8")
    _refused(b"[]", "expected an object")
    _refused(b"{}", "ureport_version: missing")
    _refused(json.dumps({**good, "ureport_version": 9}).encode(), "version 9 is not supported")
    _refused(json.dumps({**good, "os": {**good["os"], "name": "bad name!"}}).encode(), r"os\.name: does not match")
    bad_frame = json.loads(json.dumps(good))
    bad_frame["problem"]["stacktrace"][0]["frames"][2]["build_id_offset"] = "12"
    _refused(json.dumps(bad_frame).encode(), r"problem\.stacktrace\[0\]\.frames\[2\]\.build_id_offset: expected an integer")
    _refused(json.dumps({**good, "problem": {**good["problem"], "type": "fortran"}}).encode(), "not one of")
    _refused(b'{"ureport_version": 2, "x": NaN}', "not valid JSON")
    _refused(b" " * (600 * 1024), "over the", status=413)


def test_python_and_kerneloops_ureports() -> None:
    base = {"ureport_version": 2, "reason": "r", "os": {"name": "fedora", "version": "39", "architecture": "x86_64"},
            "packages": []}
    py = parse(json.dumps({**base, "problem": {"type": "python", "component": "app", "exception_name": "ZeroDivisionError",
               "stacktrace": [{"file_name": "/usr/bin/app", "file_line": 3, "function_name": "f",
                               "line_contents": "1/0"}]}}).encode(), **LIMITS)
    assert py.kind == "python" and len(py.bthash) == 40
    oops_problem = {"type": "kerneloops", "component": "kernel", "version": "6.1.0", "modules": ["kvm"],
                    "frames": [{"address": 1, "reliable": True, "function_name": f, "function_offset": 16,
                                "function_length": 64} for f in ("warn_slowpath_common", "kvm_vcpu_ioctl")]
                    + [{"reliable": False, "function_name": "noise"}]}
    oops = parse(json.dumps({**base, "problem": oops_problem}).encode(), **LIMITS)
    import hashlib

    assert classify_ureport(oops).duphash == hashlib.sha1(b"warn_slowpath_common\nkvm_vcpu_ioctl\n").hexdigest()


def test_attachment() -> None:
    assert parse_attachment(b'{"bthash": "ABCDEF01", "type": "RHBZ", "data": "12345"}', max_bytes=2048) == (
        "abcdef01", "RHBZ", "12345")
    with pytest.raises(RejectedInput, match="data: longer than 1024"):
        parse_attachment(json.dumps({"bthash": "ab", "type": "comment", "data": "x" * 1025}).encode(), max_bytes=4096)
    with pytest.raises(RejectedInput, match="bthash: does not match"):
        parse_attachment(b'{"bthash": "not-hex", "type": "x", "data": "y"}', max_bytes=2048)
