"""Checks on recorded data, for what this machine does not have (origins in data/README.md):
pstore and kdump records, wtmp and journals of clean and unclean shutdowns, PSI pressure,
low memory, file-handle exhaustion, filesystem errors, OpenVZ beancounters, a VM paused on
an I/O error, and a spool with unreported and corrupt directories."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from checkhelpers import CUR_BOOT, DATA, PREV_BOOT, make_journal, make_root, make_wtmp, run

from collectors.checks.host import HostConfig

STATE_OVZ = Path(__file__).resolve().parents[1] / "state" / "data" / "openvz"


def test_taint_is_decoded(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"/proc/sys/kernel/tainted": "4609\n"})  # P + W + O
    rec = run(HostConfig(root=str(root)), "boot.taint")["boot.taint"]
    assert rec.status == "warn" and "PWO" in rec.result.summary
    assert "W (bit 9): kernel issued a warning" in rec.result.evidence
    make_root(tmp_path, {"/proc/sys/kernel/tainted": "4096\n"})  # O only: a module, not trouble
    rec = run(HostConfig(root=str(root)), "boot.taint")["boot.taint"]
    assert rec.status == "pass" and "tainted O" in rec.result.summary


def test_pstore_panic_and_pstore_mount(tmp_path: Path) -> None:
    root = make_root(tmp_path, {
        "/proc/self/mountinfo": "25 1 0:22 / /sys/fs/pstore rw,nosuid,nodev,noexec,relatime shared:7 - pstore pstore rw\n",
        "/sys/module/pstore/parameters/backend": "ramoops\n"})
    (root / "sys/fs/pstore").mkdir(parents=True)
    shutil.copy(DATA / "pstore" / "dmesg-ramoops-0", root / "sys/fs/pstore/")
    recs = run(HostConfig(root=str(root)), "boot.previous_panic", "crash.pstore")
    panic = recs["boot.previous_panic"]
    assert panic.status == "fail"
    assert any(e.startswith("pstore: pstore") for e in panic.result.evidence), panic.result.evidence
    assert recs["crash.pstore"].status == "pass" and "ramoops, 1 record" in recs["crash.pstore"].result.summary


def test_kdump_crash_dir_and_crash_kernel(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"/proc/cmdline": "BOOT_IMAGE=/vmlinuz root=/dev/vda1 crashkernel=512M\n",
                                "/sys/kernel/kexec_crash_size": "536870912\n",
                                "/sys/kernel/kexec_crash_loaded": "0\n"})
    shutil.copytree(DATA / "kdump", root / "var/crash")
    recs = run(HostConfig(root=str(root)), "boot.previous_panic", "crash.kdump")
    assert recs["boot.previous_panic"].status == "fail"
    assert any("dmesg.202611240315" in e for e in recs["boot.previous_panic"].result.evidence)
    assert recs["crash.kdump"].status == "fail" and "none is loaded" in recs["crash.kdump"].result.summary
    (root / "sys/kernel/kexec_crash_loaded").write_text("1\n")
    assert run(HostConfig(root=str(root)), "crash.kdump")["crash.kdump"].status == "pass"
    (root / "sys/kernel/kexec_crash_size").write_text("0\n")
    assert run(HostConfig(root=str(root)), "crash.kdump")["crash.kdump"].status == "warn"


@pytest.mark.parametrize("clean", [True, False])
def test_wtmp_shutdown_record(tmp_path: Path, clean: bool) -> None:
    wtmp = make_wtmp(tmp_path / "wtmp", clean)
    if shutil.which("last"):  # the real last(1) agrees with what the records say
        out = subprocess.run(["last", "-x", "-f", str(wtmp)], capture_output=True, text=True).stdout
        assert ("shutdown system down" in out) == clean
        assert ("crash" in out) == (not clean)
    root = make_root(tmp_path / "root", {"/proc/stat": "btime 1\n"})
    recs = run(HostConfig(root=str(root), wtmp=str(wtmp)), "boot.unclean_shutdown", "shutdown.last")
    assert recs["boot.unclean_shutdown"].status == ("pass" if clean else "warn")
    assert recs["shutdown.last"].status == ("pass" if clean else "warn")


def _clean_previous_boot() -> list[tuple[str, float, str, int | None, str]]:
    e: list[tuple[str, float, str, int | None, str]] = [
        (PREV_BOOT, 0.0, "kernel", None, "Linux version 6.1.0-18-amd64"),
        (PREV_BOOT, 50.0, "systemd", 1, "Stopping nginx.service - A high performance web server..."),
        (PREV_BOOT, 50.1, "systemd", 1, "Stopping postgresql@15-main.service - PostgreSQL Cluster 15-main..."),
        (PREV_BOOT, 50.4, "systemd", 1, "Stopped nginx.service - A high performance web server."),
        (PREV_BOOT, 140.1, "systemd", 1, "postgresql@15-main.service: State 'stop-sigterm' timed out. Killing."),
        (PREV_BOOT, 140.3, "systemd", 1, "Stopped postgresql@15-main.service - PostgreSQL Cluster 15-main."),
        (PREV_BOOT, 141.0, "systemd", 1, "Reached target shutdown.target - System Shutdown."),
        (PREV_BOOT, 141.2, "systemd", 1, "Reached target poweroff.target - System Power Off."),
        (PREV_BOOT, 141.3, "systemd-journald", 230, "Journal stopped"),
        (PREV_BOOT, 141.5, "systemd-shutdown", 1, "Syncing filesystems and block devices."),
        (PREV_BOOT, 141.9, "kernel", None, "reboot: Power down"),
    ]
    return e + [(CUR_BOOT, 3600.0, "kernel", None, "Linux version 6.1.0-18-amd64")]


def test_journal_clean_poweroff_with_a_slow_service(tmp_path: Path) -> None:
    journal = make_journal(tmp_path / "j.journal", _clean_previous_boot())
    root = make_root(tmp_path / "root", {"/proc/stat": "btime 1\n"})
    cfg = HostConfig(root=str(root), journal_args=("--file", str(journal)))
    recs = run(cfg, "boot", "shutdown")
    assert recs["boot.unclean_shutdown"].status == "pass"
    last = recs["shutdown.last"]
    assert last.status == "pass" and last.result.summary.startswith("clean poweroff"), last.result
    slow = recs["shutdown.slow_units"]
    assert slow.status == "warn" and slow.result.summary.startswith("postgresql@15-main.service took 90 s")
    assert "postgresql@15-main.service: 90.2 s (timed out, killed)" in slow.result.evidence
    assert "nginx.service: 0.4 s" in slow.result.evidence
    assert recs["boot.previous_panic"].status == "pass"


def test_journal_previous_boot_died_in_an_oops(tmp_path: Path) -> None:
    oops = (DATA / "kdump/202611240315/dmesg.202611240315").read_text().splitlines()[2:]
    entries: list[tuple[str, float, str, int | None, str]] = [
        (PREV_BOOT, 10.0 + i / 1000, "kernel", None, line.split("] ", 1)[1]) for i, line in enumerate(oops)]
    entries.append((CUR_BOOT, 3600.0, "kernel", None, "Linux version 6.1.0-18-amd64"))
    journal = make_journal(tmp_path / "j.journal", entries)
    root = make_root(tmp_path / "root", {"/proc/stat": "btime 1\n"})
    recs = run(HostConfig(root=str(root), journal_args=("--file", str(journal))), "boot", "shutdown")
    assert recs["boot.unclean_shutdown"].status == "warn"
    panic = recs["boot.previous_panic"]
    assert panic.status == "fail", panic.result
    assert any("br_dev_xmit" in e for e in panic.result.evidence)
    assert recs["shutdown.last"].status == "warn" and "panic" in recs["shutdown.last"].result.summary


def test_runtime_trouble(tmp_path: Path) -> None:
    klog = tmp_path / "kern.log"
    klog.write_text(
        "[  100.000000] EXT4-fs error (device vda1): ext4_find_entry:1682: inode #2: comm ls: reading directory lblock 0\n"
        "[  100.000100] EXT4-fs (vda1): Remounting filesystem read-only\n"
        "[  120.000000] blk_update_request: I/O error, dev vdb, sector 2048 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0\n"
        "[  240.000000] INFO: task jbd2/vda1-8:215 blocked for more than 120 seconds.\n"
        "[  240.000010]       Not tainted 6.1.0-18-amd64 #1 Debian 6.1.76-1\n"
        "[  240.000020] \"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.\n"
        "[  240.000030] task:jbd2/vda1-8     state:D stack:0     pid:215   ppid:2      flags:0x00004000\n"
        "[  240.000040] Call Trace:\n[  240.000041]  <TASK>\n[  240.000042]  __schedule+0x34d/0x9e0\n"
        "[  240.000043]  schedule+0x5a/0xd0\n[  240.000044]  jbd2_journal_commit_transaction+0x2ed/0x1a40 [jbd2]\n"
        "[  240.000045]  </TASK>\n"
        "[  300.000000] Out of memory: Killed process 4242 (java) total-vm:8000000kB, anon-rss:6000000kB, file-rss:0kB\n")
    root = make_root(tmp_path / "root", {
        "/proc/pressure/memory": "some avg10=40.00 avg60=35.10 avg300=20.00 total=912345678\n"
                                 "full avg10=15.00 avg60=12.50 avg300=8.00 total=412345678\n",
        "/proc/pressure/cpu": "some avg10=1.00 avg60=1.00 avg300=1.00 total=1000\n",
        "/proc/meminfo": "MemTotal:       16000000 kB\nMemFree:          100000 kB\nMemAvailable:     400000 kB\n"
                         "SwapTotal:       2000000 kB\nSwapFree:          10000 kB\n",
        "/proc/vmstat": "nr_free_pages 25000\noom_kill 1\n",
        "/proc/sys/fs/file-nr": "1630000\t0\t1631000\n",
        "/proc/self/mountinfo": "22 1 254:1 / / ro,relatime shared:1 - ext4 /dev/vda1 ro,errors=remount-ro\n"})
    recs = run(HostConfig(root=str(root), kernel_log=str(klog)), "runtime")
    assert recs["runtime.load"].status == "warn" and "memory full 12.5%" in recs["runtime.load"].result.summary
    assert recs["runtime.memory"].status == "fail"
    assert recs["runtime.oom"].status == "warn" and any("(java)" in e for e in recs["runtime.oom"].result.evidence)
    assert recs["runtime.lockups"].status == "warn" and "jbd2" in recs["runtime.lockups"].result.summary
    fs = recs["runtime.fs_errors"]
    assert fs.status == "fail" and "/ (ext4 on /dev/vda1) is mounted read-only" in fs.result.evidence
    assert recs["runtime.file_handles"].status == "fail"
    assert recs["runtime.failed_units"].status == "skip"


def _ovz_root(root: Path) -> Path:
    (root / "etc/vz/conf").mkdir(parents=True)
    for name in ("101.conf", "102.conf"):
        shutil.copy(STATE_OVZ / name, root / "etc/vz/conf" / name)
    shutil.copy(STATE_OVZ / "vz.conf", root / "etc/vz/vz.conf")
    (root / "proc/vz").mkdir(parents=True)
    shutil.copy(STATE_OVZ / "veinfo", root / "proc/vz/veinfo")
    shutil.copy(STATE_OVZ / "user_beancounters", root / "proc/user_beancounters")
    return root


def test_openvz_beancounters_from_the_state_collector(tmp_path: Path) -> None:
    root = _ovz_root(tmp_path / "root")
    recs = run(HostConfig(root=str(root)), "containers")
    bc = recs["containers.beancounters"]
    assert bc.status == "warn" and "numproc failcnt 12" in bc.result.summary, bc.result
    assert recs["containers.vm_io_error"].status == "skip"


DOMSTATUS = """<domstatus state='paused' reason='ioerror' pid='4242'>
  <domain type='kvm'>
    <name>web1</name>
    <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
    <memory unit='KiB'>1048576</memory>
    <vcpu>1</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
    <devices>
      <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
        <source file='/var/lib/libvirt/images/web1.qcow2'/><target dev='vda'/></disk>
    </devices>
  </domain>
</domstatus>
"""


def test_vm_paused_on_io_error_with_a_missing_image(tmp_path: Path) -> None:
    # libvirt's status file (virDomainObjFormat: state/reason strings), as qemu:///system keeps it.
    root = make_root(tmp_path / "root", {"/run/libvirt/qemu/web1.xml": DOMSTATUS})
    recs = run(HostConfig(root=str(root)), "containers")
    assert recs["containers.vm_io_error"].status == "fail"
    assert "libvirt web1: paused (ioerror)" in recs["containers.vm_io_error"].result.evidence
    assert recs["containers.states"].status == "warn"
    assert recs["containers.disk_images"].status == "fail"
    (root / "var/lib/libvirt/images").mkdir(parents=True)
    (root / "var/lib/libvirt/images/web1.qcow2").write_bytes(b"QFI\xfb")
    assert run(HostConfig(root=str(root)), "containers.disk_images")["containers.disk_images"].status == "pass"


def test_reporting_spool_and_hook_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reporter.dumpdir import DumpDir

    spool = tmp_path / "spool"
    spool.mkdir()
    dd = DumpDir.create(str(spool), "ccpp-2026-11-24-03:15:20.1-42")
    dd.save_text("type", "CCpp")
    dd.save_text("reason", "crasher killed by SIGSEGV")
    dd.set_time(1_790_000_000)
    dd.commit()
    dd.close()
    (spool / "ccpp-broken").mkdir()
    (spool / "ccpp-broken" / "type").write_text("CCpp")
    log = tmp_path / "hook.log"
    log.write_text("2026-11-24T03:15:20 crashkit-hook[7]: saved /var/spool/crashkit/ccpp-1\n"
                   "2026-11-24T03:16:00 crashkit-hook[8]: error: /var/spool/crashkit: Permission denied\n")
    cfg = tmp_path / "crashkit.toml"
    cfg.write_text(f'[hook]\nlog_file = "{log}"\n')
    monkeypatch.setenv("CRASHKIT_CONFIG", str(cfg))
    recs = run(HostConfig(spool=str(spool), state_dir=str(tmp_path / "st")), "reporting")
    assert recs["reporting.unreported"].status == "warn"
    assert "not reported: ccpp-2026-11-24-03:15:20.1-42: crasher killed by SIGSEGV" in recs["reporting.unreported"].result.evidence
    assert recs["reporting.spool_entries"].result.evidence == ("ccpp-broken: no 'time' element",)
    errs = recs["reporting.hook_errors"]
    assert errs.status == "warn" and "Permission denied" in errs.result.summary


def test_core_pipe_limit_depends_on_the_handler(tmp_path: Path) -> None:
    launcher = "/var/lib/crashkit/crashkit-hook"
    root = make_root(tmp_path, {
        "/proc/sys/kernel/core_pattern": f"|{launcher} %P %p %i %I %u %g %s %t %c %d %h %e\n",
        "/proc/sys/kernel/core_pipe_limit": "0\n",
        launcher: "#!/usr/bin/python3 -IS\nfrom collectors.corehook.hook import main\n"})
    (root / launcher.lstrip("/")).chmod(0o755)
    recs = run(HostConfig(root=str(root)), "crash.core_pattern", "crash.core_pipe_limit")
    assert recs["crash.core_pattern"].status == "pass" and "crashkit" in recs["crash.core_pattern"].result.summary
    assert recs["crash.core_pipe_limit"].status == "pass"      # install's default: every crash piped
    (root / "proc/sys/kernel/core_pattern").write_text("|/usr/lib/systemd/systemd-coredump %P %u %g %s %t %c %h\n")
    (root / "usr/lib/systemd").mkdir(parents=True)
    (root / "usr/lib/systemd/systemd-coredump").write_text("#!/bin/sh\n")
    (root / "usr/lib/systemd/systemd-coredump").chmod(0o755)
    recs = run(HostConfig(root=str(root)), "crash.core_pattern", "crash.core_pipe_limit")
    assert "systemd-coredump" in recs["crash.core_pattern"].result.summary
    assert recs["crash.core_pipe_limit"].status == "warn"
    (root / "usr/lib/systemd/systemd-coredump").unlink()
    assert run(HostConfig(root=str(root)), "crash.core_pattern")["crash.core_pattern"].status == "fail"
