"""Kerneloops problem directories: ABRT's elements and wording, duplicates, interop with a
directory ABRT made."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path

import pytest

from collectors.oops import parse
from collectors.oops.koops_hash import abrt_crash_function, abrt_reason
from collectors.oops.taint import abrt_tainted_long
from collectors.oops.kerneloops_dir import (
    BROKEN_BIOS,
    NO_FRAMES,
    UNSUPPORTED_HW,
    HostInfo,
    OopsDirWriter,
    occurrence_key,
    tainted_modules,
)
from reporter.dumpdir import DumpDir, iter_problem_dirs

HOST = HostInfo(kernel="6.1.0-test", architecture="x86_64", hostname="testhost",
                os_info='NAME="Test"\nID=test\n', os_release=None,
                cmdline="BOOT_IMAGE=/vmlinuz root=/dev/vda1 quiet",
                proc_modules=("ext4 1003520 1 - Live 0xffffffffc0a00000\n"
                              "nvidia 56754176 0 - Live 0xffffffffc1000000 (POE)\n"
                              "vboxdrv 700416 0 - Live 0xffffffffc2000000 (OE)\n"
                              "old 100 0 - Live 0x0 (--------T)\n"),
                fips_enabled="0")


def _report(fixtures_dir: Path, name: str, index: int = 0):
    reports = parse.scan_text((fixtures_dir / "abrt-oops" / name).read_text(errors="replace"))
    assert len(reports) > index, f"no report {index} in {name}"
    return reports[index]


def _elements(path: str) -> dict[str, str]:
    with DumpDir.open(path, readonly=True) as dd:
        return {name: dd.load_text(name) for name in dd.list_elements()}


def test_directory_has_abrt_elements(tmp_path: Path, fixtures_dir: Path) -> None:
    report = _report(fixtures_dir, "koops-tainted-bg1")
    writer = OopsDirWriter(str(tmp_path), HOST, pid=4242, clock=lambda: 1_700_000_000.5)
    result = writer.write(report, origin="/var/log/kern.log")
    assert result.created and result.count == 1
    assert re.fullmatch(r"oops-\d{4}-\d\d-\d\d-\d\d:\d\d:\d\d-4242-\d+", os.path.basename(result.path))
    assert list(iter_problem_dirs(str(tmp_path))) == [result.path]
    el = _elements(result.path)
    assert el["type"] == "Kerneloops" and el["analyzer"] == "abrt-oops"
    assert el["time"] == el["last_occurrence"] == "1700000000" and el["count"] == "1"
    assert el["backtrace"].rstrip("\n") == report.text.rstrip("\n")
    # "Pid: 4008, comm: rm Tainted: G    B       2.6.38.6-27.fc15.i686 #1 ECS"
    assert el["kernel"] == "2.6.38.6-27.fc15.i686"
    assert el["duphash"] == el["uuid"] == report.duphash and re.fullmatch(r"[0-9a-f]{40}", el["uuid"])
    assert el["reason"] == abrt_reason(report.text)
    assert el["crash_function"] == abrt_crash_function(report.text)
    assert el["cmdline"] == HOST.cmdline and el["proc_modules"] == HOST.proc_modules
    assert "fips_enabled" not in el and "uid" not in el
    assert el["hostname"] == "testhost" and el["architecture"] == "x86_64"
    assert el["os_info"] == HOST.os_info
    # Taint, as ABRT's koops-tainted-bg1 test expects: "GB".
    assert el["kernel_tainted_short"] == "GB"
    assert el["kernel_tainted_long"].startswith("B - ")
    raw = (Path(result.path) / "not-reportable").read_text()
    assert raw == ("A kernel problem occurred, but your kernel has been tainted (flags:GB). Explanation:\n"
                   + abrt_tainted_long("GB")
                   + "Kernel maintainers are unable to diagnose tainted reports."
                   " Tainted modules: nvidia,vboxdrv.")
    assert el["oops_kind"] == report.kind and el["oops_title"] == report.title
    record = json.loads(el["kernel_report.json"])
    assert record["title"] == report.title and record["source"] == "/var/log/kern.log"
    # Modes as libreport's default: files 0640, directory 0750.
    assert os.stat(result.path).st_mode & 0o777 == 0o750
    assert os.stat(os.path.join(result.path, "backtrace")).st_mode & 0o777 == 0o640


@pytest.mark.parametrize("name, sentence", [("oops_broken_bios.test", BROKEN_BIOS),
                                            ("oops_unsupported_hw.test", UNSUPPORTED_HW)])
def test_broken_bios_and_unsupported_hardware(tmp_path: Path, fixtures_dir: Path, name: str,
                                              sentence: str) -> None:
    reports = parse.scan_text((fixtures_dir / "abrt-oops" / name).read_text(errors="replace"))
    marker = "Your BIOS is broken" if "bios" in name else "Your hardware is unsupported"
    report = next(r for r in reports if marker in r.text)
    el = _elements(OopsDirWriter(str(tmp_path), HOST).write(report).path)
    assert el["not-reportable"] == sentence
    assert "kernel_tainted_short" not in el


def test_abrt_sentences_are_verbatim() -> None:
    assert BROKEN_BIOS == ("A kernel problem occurred because of broken BIOS. Unfortunately, such "
                           "problems are not fixable by kernel maintainers.")
    assert UNSUPPORTED_HW == ("A kernel problem occurred, but your hardware is unsupported, therefore "
                              "kernel maintainers are unable to fix this problem.")


def test_duplicate_bumps_count_and_last_occurrence(tmp_path: Path, fixtures_dir: Path) -> None:
    report = _report(fixtures_dir, "oops6.test")
    now = [1_700_000_000.0]
    writer = OopsDirWriter(str(tmp_path), HOST, clock=lambda: now[0])
    first = writer.write(report)
    now[0] += 3600
    second = OopsDirWriter(str(tmp_path), HOST, clock=lambda: now[0]).write(report)  # fresh index
    assert not second.created and second.path == first.path and second.count == 2
    el = _elements(first.path)
    assert el["count"] == "2" and el["time"] == "1700000000" and el["last_occurrence"] == "1700003600"
    assert len(list(iter_problem_dirs(str(tmp_path)))) == 1


def test_duplicate_of_a_directory_abrt_made(tmp_path: Path, fixtures_dir: Path) -> None:
    report = _report(fixtures_dir, "oops6.test")
    abrt_dir = tmp_path / "oops-2024-01-02-03:04:05-999-0"
    abrt_dir.mkdir()
    for name, value in {"time": "1704164645", "type": "Kerneloops", "analyzer": "abrt-oops",
                        "uuid": report.duphash, "duphash": report.duphash, "count": "3",
                        "last_occurrence": "1704164645"}.items():
        (abrt_dir / name).write_text(value)
    result = OopsDirWriter(str(tmp_path), HOST, clock=lambda: 1_800_000_000.0).write(report)
    assert result.path == str(abrt_dir) and not result.created and result.count == 4
    assert (abrt_dir / "last_occurrence").read_text() == "1800000000"


def test_other_types_with_the_same_hash_are_not_duplicates(tmp_path: Path, fixtures_dir: Path) -> None:
    report = _report(fixtures_dir, "oops6.test")
    other = tmp_path / "ccpp-2024-01-02-03:04:05.1-1"
    other.mkdir()
    for name, value in {"time": "1704164645", "type": "CCpp", "uuid": report.duphash}.items():
        (other / name).write_text(value)
    assert OopsDirWriter(str(tmp_path), HOST).write(report).created


def test_report_without_frames_gets_title_hash_and_not_reportable(tmp_path: Path,
                                                                  fixtures_dir: Path) -> None:
    report = dataclasses.replace(_report(fixtures_dir, "oops6.test"), duphash=None)
    writer = OopsDirWriter(str(tmp_path), HOST)
    el = _elements(writer.write(report).path)
    expected = hashlib.sha1(f"Kerneloops\n{report.title}\n".encode()).hexdigest()
    assert el["duphash"] == el["uuid"] == expected
    assert el["not-reportable"] == NO_FRAMES
    assert not writer.write(report).created


def test_tainted_modules() -> None:
    assert tainted_modules(HOST.proc_modules or "") == "nvidia,vboxdrv"
    assert tainted_modules("ext4 1 0 - Live 0x0\n") is None


def test_occurrence_key_ignores_log_prefixes_but_not_content(fixtures_dir: Path) -> None:
    text = (fixtures_dir / "abrt-oops" / "oops6.test").read_text()
    plain = parse.scan_text(text)[0]
    syslog = parse.scan_text("".join(f"Jan 17 10:11:12 myhost kernel: [ 123.456789] {line}\n"
                                     for line in text.splitlines()))[0]
    kmsg = parse.scan_text("".join(f"4,{i},{i * 10},-;{line}\n"
                                   for i, line in enumerate(text.splitlines())))[0]
    assert plain.title == syslog.title == kmsg.title
    assert occurrence_key(plain) == occurrence_key(syslog) == occurrence_key(kmsg)
    other = parse.scan_text(text.replace("PID: 2979", "PID: 3000"))[0]
    assert other.duphash == plain.duphash and occurrence_key(other) != occurrence_key(plain)


def test_host_info_from_a_root_tree(tmp_path: Path) -> None:
    (tmp_path / "proc" / "sys" / "crypto").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    (tmp_path / "proc" / "cmdline").write_text("root=/dev/sda1 ro\n")
    (tmp_path / "proc" / "modules").write_text("ext4 1 0 - Live 0x0\n")
    (tmp_path / "proc" / "sys" / "crypto" / "fips_enabled").write_text("1\n")
    (tmp_path / "etc" / "os-release").write_text('NAME="Fedora Linux"\n')
    (tmp_path / "etc" / "system-release").write_text("Fedora release 40 (Forty)\n")
    host = HostInfo.from_root(str(tmp_path))
    assert host.cmdline == "root=/dev/sda1 ro" and host.fips_enabled == "1"
    assert host.os_release == "Fedora release 40 (Forty)" and host.os_info == 'NAME="Fedora Linux"\n'
    assert host.kernel == os.uname().release


def test_fips_and_unwritable_spool(tmp_path: Path, fixtures_dir: Path) -> None:
    report = _report(fixtures_dir, "oops6.test")
    host = dataclasses.replace(HOST, fips_enabled="1")
    el = _elements(OopsDirWriter(str(tmp_path / "a"), host).write(report).path)
    assert el["fips_enabled"] == "1"
    spool_file = tmp_path / "not-a-dir"
    spool_file.write_text("x")
    with pytest.raises(OSError):
        OopsDirWriter(str(spool_file), HOST).write(report)
