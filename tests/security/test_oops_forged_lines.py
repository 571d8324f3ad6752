"""Finding 3 of the security review (issue 15): forged kernel lines.

The syslog source took any line tagged ``kernel`` for the kernel's, so ``logger -t kernel ...``
from any user became a Kerneloops problem directory, reportable like a real oops. Now only
kernel transports are trusted (``/dev/kmsg``, the journal's ``_TRANSPORT=kernel``, the kernel's
pstore, kdump logs only root could write); reports from other logs carry
``kernel_log_unauthenticated`` and ``not-reportable`` (docs/oops-collect.md, "Forged kernel
lines").

The forgeries are real: ``logger`` run as an unprivileged user (uid 65534) sends to a syslog
socket, and the test plays the syslog daemon the way rsyslog's default Fedora rule does
(``*.info`` to ``/var/log/messages``, traditional file format). The kernel's copy is a real
``/dev/kmsg`` record. The journal test uses a journal file written by systemd-journal-remote
with the entries journald makes for a kernel line and for ``logger -t kernel``, and the host's
journal when journald runs here.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from collectors.oops.collect import collect
from collectors.oops.kerneloops_dir import UNAUTHENTICATED_ELEMENT, HostInfo
from collectors.oops.sources import (
    JournalSource,
    KdumpSource,
    KmsgSource,
    LogUnit,
    PstoreSource,
    SyslogSource,
    read_boot_id,
)
from collectors.oops.sources.base import UNKNOWN_ORIGIN
from collectors.oops.watch import JournalFollower, follow
from reporter.dumpdir import DumpDir, iter_problem_dirs

HOST = HostInfo(kernel="6.1.0-test", architecture="x86_64", hostname="testhost", os_info=None,
                os_release=None, cmdline="", proc_modules="", fips_enabled=None)
CRASHKIT = [sys.executable, "-m", "collectors.cli"]
JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
NOBODY = 65534
UNAUTH = "This report is not known to come from the kernel: "


def oops(func: str) -> list[str]:
    """A NULL-pointer oops in ``func`` (a unique name per test), untainted, with real frames."""
    return [
        "BUG: kernel NULL pointer dereference, address: 0000000000000008",
        "#PF: supervisor read access in kernel mode",
        "Oops: 0000 [#1] PREEMPT SMP NOPTI",
        "CPU: 1 PID: 4242 Comm: insmod Not tainted 6.1.0-13-amd64 #1 Debian 6.1.55-1",
        f"RIP: 0010:{func}+0x1c/0x40 [crashkit_test]",
        "Call Trace:",
        " <TASK>",
        f" {func}+0x1c/0x40 [crashkit_test]",
        " do_one_initcall+0x5b/0x220",
        " do_init_module+0x4a/0x1f0",
        " __do_sys_finit_module+0xac/0x120",
        " do_syscall_64+0x3b/0x90",
        " entry_SYSCALL_64_after_hwframe+0x64/0xce",
        " </TASK>",
        "---[ end trace 0000000000000000 ]---",
    ]


def unique(name: str) -> str:
    return f"crashkit_{name}_{uuid.uuid4().hex[:8]}"


def dirs_with(spool: Path, func: str) -> dict[str, dict[str, str]]:
    """Elements of the spool's problem directories whose backtrace names ``func``."""
    out = {}
    for path in iter_problem_dirs(str(spool)):
        with DumpDir.open(path, readonly=True) as dd:
            if func in dd.load_text("backtrace"):
                out[path] = {name: dd.load_text(name) for name in dd.list_elements()}
    return out


def assert_unauthenticated(elements: dict[str, str], *words: str) -> None:
    assert elements[UNAUTHENTICATED_ELEMENT].startswith(UNAUTH)
    assert elements["not-reportable"].startswith(elements[UNAUTHENTICATED_ELEMENT].strip())
    assert "can be forged there" in elements["not-reportable"]
    for word in words:
        assert word in elements[UNAUTHENTICATED_ELEMENT]


def assert_kernel_sourced(elements: dict[str, str]) -> None:
    assert UNAUTHENTICATED_ELEMENT not in elements
    assert "not-reportable" not in elements  # untainted, with frames: reportable as it is


# --- a syslog daemon fed by a real logger -------------------------------------------------

@contextmanager
def syslog_daemon(logdir: Path) -> Iterator[str]:
    """A syslog socket; what arrives is written to ``logdir/messages`` as rsyslog's Fedora rule
    ``*.info /var/log/messages`` writes it (``<PRI>`` dropped, the rest is the file line)."""
    sockdir = tempfile.mkdtemp(prefix="crashkit-syslog-")
    os.chmod(sockdir, 0o755)  # the unprivileged logger must reach the socket
    path = os.path.join(sockdir, "log")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    os.chmod(path, 0o666)
    sock.settimeout(0.2)
    stop = threading.Event()
    logdir.mkdir(parents=True, exist_ok=True)
    out = open(logdir / "messages", "a")

    def serve() -> None:
        while True:
            try:
                data = sock.recv(65536).decode("utf-8", "replace")
            except socket.timeout:
                if stop.is_set():
                    return
                continue
            pri, _, rest = data.partition(">")
            if pri.startswith("<") and int(pri[1:]) & 7 <= 6:  # severity info or more severe
                out.write(rest.rstrip("\n") + "\n")
                out.flush()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join(5)
        out.close()
        sock.close()
        shutil.rmtree(sockdir, ignore_errors=True)


def logger_as_nobody(sockpath: str, lines: list[str]) -> None:
    """``logger -t kernel`` (RFC 3164, as a syslog daemon's local socket takes it), one message
    per line of its input, as uid 65534 when this runs as root, else as whoever runs the tests
    (unprivileged too)."""
    if shutil.which("logger") is None:
        pytest.skip("needs logger (util-linux)")
    argv = ["logger", "-t", "kernel", "--rfc3164", "-u", sockpath]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv (util-linux) to run logger as an unprivileged user")
        argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]
    subprocess.run(argv, input="\n".join(lines) + "\n", text=True, check=True, capture_output=True,
                   timeout=30)


def forge_into_syslog(logdir: Path, lines: list[str]) -> Path:
    with syslog_daemon(logdir) as sockpath:
        logger_as_nobody(sockpath, lines)
        deadline = time.monotonic() + 10
        messages = logdir / "messages"
        while time.monotonic() < deadline and messages.read_text().count("\n") < len(lines):
            time.sleep(0.05)
    return logdir / "messages"


def test_logger_tagged_kernel_by_any_user_is_an_unauthenticated_report(tmp_path: Path) -> None:
    func = unique("forged_syslog")
    logdir = tmp_path / "var" / "log"
    messages = forge_into_syslog(logdir, oops(func))
    first = messages.read_text().splitlines()[0]
    assert " kernel: BUG: kernel NULL pointer dereference" in first  # looks exactly like the kernel's

    spool = tmp_path / "spool"
    [summary] = collect([SyslogSource(str(logdir))], str(spool), host=HOST)
    assert summary.new == 1
    [(path, elements)] = dirs_with(spool, func).items()
    assert elements["type"] == "Kerneloops"
    assert_unauthenticated(elements, "syslog file", str(messages), "logger -t kernel")
    assert json.loads(elements["kernel_report.json"])["source"] == str(messages)


def test_the_forgery_named_as_a_file_on_the_command_line_is_unauthenticated(tmp_path: Path) -> None:
    func = unique("forged_file")
    messages = forge_into_syslog(tmp_path / "log", oops(func))
    spool = tmp_path / "spool"
    res = subprocess.run([*CRASHKIT, "oops", "collect", "--source", str(messages), "--spool", str(spool),
                          "--json"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["new"] == 1
    [elements] = dirs_with(spool, func).values()
    assert_unauthenticated(elements, "named on the command line", str(messages))


# --- the kernel's own transports ----------------------------------------------------------

def write_kmsg(lines: list[str]) -> None:
    """One /dev/kmsg record holding the whole report (the kernel rate-limits writers per
    record, and keeps the newlines inside one)."""
    if not os.access("/dev/kmsg", os.R_OK | os.W_OK):
        pytest.skip("needs read and write access to /dev/kmsg (root)")
    fd = os.open("/dev/kmsg", os.O_WRONLY)
    try:
        os.write(fd, ("<4>" + "\n".join(lines) + "\n").encode())
    finally:
        os.close(fd)


@pytest.mark.slow
def test_kmsg_reports_are_not_marked(tmp_path: Path) -> None:
    """Leaves one small synthetic oops (named after this test) in the host's kernel log."""
    func = unique("kmsg_trusted")
    write_kmsg(oops(func))
    spool = tmp_path / "spool"
    collect([KmsgSource()], str(spool), host=HOST)
    [elements] = dirs_with(spool, func).values()
    assert elements["oops_kind"] == "null-ptr-deref"
    assert_kernel_sourced(elements)


@pytest.mark.slow
def test_a_forged_copy_neither_hides_nor_joins_the_kernels_report(tmp_path: Path) -> None:
    """The same oops forged into syslog first and then printed by the kernel: the kernel's copy
    still gets its own reportable directory; a later forgery with the same hash bumps only the
    forged directory's count."""
    func = unique("forged_first")
    logdir = tmp_path / "var" / "log"
    forge_into_syslog(logdir, oops(func))
    spool = tmp_path / "spool"
    collect([SyslogSource(str(logdir))], str(spool), host=HOST)
    write_kmsg(oops(func))
    collect([KmsgSource(), SyslogSource(str(logdir))], str(spool), host=HOST)
    found = dirs_with(spool, func)
    assert len(found) == 2
    forged = {p: e for p, e in found.items() if UNAUTHENTICATED_ELEMENT in e}
    real = {p: e for p, e in found.items() if UNAUTHENTICATED_ELEMENT not in e}
    assert len(forged) == 1 and len(real) == 1
    assert_kernel_sourced(next(iter(real.values())))
    assert next(iter(real.values()))["duphash"] == next(iter(forged.values()))["duphash"]

    # Another forgery of the same bug (other registers, same frames): counted on the forged one.
    again = oops(func)
    again[3] = again[3].replace("PID: 4242", "PID: 4343")
    forge_into_syslog(logdir, again)
    collect([KmsgSource(), SyslogSource(str(logdir))], str(spool), host=HOST)
    found = dirs_with(spool, func)
    assert {p: e["count"] for p, e in found.items()} == {
        next(iter(forged)): "2", next(iter(real)): "1"}


# --- the journal --------------------------------------------------------------------------

def _export_entry(boot: str, usec: int, i: int, msg: str, *, forged: bool) -> str:
    if forged:  # what journald records for `logger -t kernel` run by uid 65534
        fields = (f"_TRANSPORT=syslog\nSYSLOG_FACILITY=1\nSYSLOG_IDENTIFIER=kernel\n_UID={NOBODY}\n"
                  f"_GID={NOBODY}\n_PID=4343\n_COMM=logger\n")
    else:  # what journald records for a kernel line read from /dev/kmsg
        fields = "_TRANSPORT=kernel\nSYSLOG_FACILITY=0\nSYSLOG_IDENTIFIER=kernel\n"
    return (f"__CURSOR=s=0;i={i}\n__REALTIME_TIMESTAMP={usec}\n__MONOTONIC_TIMESTAMP={i * 1000}\n"
            f"_BOOT_ID={boot}\nPRIORITY=4\n_HOSTNAME=testhost\n{fields}MESSAGE={msg}\n")


def journal_with(path: Path, real: list[str], forged: list[str]) -> str:
    """A journal file holding the kernel's lines and forged ones, interleaved; its boot id."""
    if not Path(JOURNAL_REMOTE).exists() or shutil.which("journalctl") is None:
        pytest.skip("needs systemd-journal-remote (apt install systemd-journal-remote) and journalctl")
    boot = read_boot_id() or "fedcba9876543210fedcba9876543210"
    now = int(time.time() * 1e6) - 10_000_000
    entries = [(line, True) for line in forged] + [(line, False) for line in real]  # forgery first
    export = "\n".join(_export_entry(boot, now + i, i + 1, msg, forged=f)
                       for i, (msg, f) in enumerate(entries)) + "\n"
    subprocess.run([JOURNAL_REMOTE, "-o", str(path), "-"], input=export.encode(), check=True,
                   capture_output=True)
    return boot


def test_journal_source_reads_only_kernel_transport(tmp_path: Path) -> None:
    real, fake = unique("journal_kernel"), unique("journal_forged")
    journal = tmp_path / "k.journal"
    journal_with(journal, oops(real), oops(fake))
    # Without the transport filter the forgery prints exactly like the kernel's lines:
    everything = subprocess.run(["journalctl", "--file", str(journal), "-o", "short-precise", "--no-pager"],
                                capture_output=True, text=True, check=True).stdout
    assert f"testhost kernel[4343]:  {fake}+0x1c/0x40" in everything

    spool = tmp_path / "spool"
    collect([JournalSource(extra_args=("--file", str(journal)), trusted=True)], str(spool), host=HOST)
    assert dirs_with(spool, fake) == {}
    [elements] = dirs_with(spool, real).values()
    assert_kernel_sourced(elements)

    # A journal named by --file is only as trustworthy as whoever wrote the file.
    spool2 = tmp_path / "spool2"
    collect([JournalSource(extra_args=("--file", str(journal)))], str(spool2), host=HOST)
    assert dirs_with(spool2, fake) == {}
    [elements] = dirs_with(spool2, real).values()
    assert_unauthenticated(elements, "--file", "_TRANSPORT=kernel")


def test_watch_journal_follower_keeps_kernel_transport_only(tmp_path: Path) -> None:
    """``oops watch --source journal`` asks journalctl for _TRANSPORT=kernel and drops any
    other entry itself. journalctl is replaced by a script printing entries a journal holds
    for both transports (a real journalctl would not even print the forged ones)."""
    real, fake = unique("follow_kernel"), unique("follow_forged")
    boot = read_boot_id() or "fedcba9876543210fedcba9876543210"
    entries = []
    for i, line in enumerate(oops(fake)):
        entries.append({"MESSAGE": line, "_TRANSPORT": "syslog", "SYSLOG_IDENTIFIER": "kernel",
                        "PRIORITY": "4", "_BOOT_ID": boot, "__CURSOR": f"f{i}", "_UID": str(NOBODY)})
    for i, line in enumerate(oops(real)):
        entries.append({"MESSAGE": line, "_TRANSPORT": "kernel", "SYSLOG_IDENTIFIER": "kernel",
                        "PRIORITY": "4", "_BOOT_ID": boot, "__CURSOR": f"k{i}"})
    data = tmp_path / "entries.json"
    data.write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    argv_file = tmp_path / "argv"
    script = tmp_path / "journalctl"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {argv_file}\ncat {data}\n")
    script.chmod(0o755)
    spool = tmp_path / "spool"
    follow(JournalFollower(journalctl=str(script)), str(spool), timeout=10, quiet=0.5, host=HOST)
    assert "_TRANSPORT=kernel" in argv_file.read_text().split("\n")
    assert dirs_with(spool, fake) == {}
    [elements] = dirs_with(spool, real).values()
    assert_kernel_sourced(elements)


def _journald_runs() -> bool:
    return (os.path.exists("/run/systemd/journal/socket") and shutil.which("journalctl") is not None
            and JournalSource().exists())


def test_host_journal_ignores_logger_lines_tagged_kernel(tmp_path: Path) -> None:
    if not _journald_runs():
        pytest.skip("journald is not running here: the host journal cannot receive logger's lines")
    func = unique("host_journal_forged")
    if shutil.which("logger") is None:
        pytest.skip("needs logger (util-linux)")
    logger_as_nobody("/dev/log", oops(func))
    deadline = time.monotonic() + 20  # the forgery is in the journal...
    while time.monotonic() < deadline:
        res = subprocess.run(["journalctl", "-b", "-t", "kernel", "-g", func, "--no-pager", "-q"],
                             capture_output=True, text=True)
        if func in res.stdout:
            break
        time.sleep(0.2)
    else:
        pytest.skip("logger's lines did not reach the journal (rate limited or forwarded elsewhere)")
    spool = tmp_path / "spool"
    collect([JournalSource(max_boots=1)], str(spool), host=HOST)
    assert dirs_with(spool, func) == {}  # ...but never in a report


# --- files only root can write, and copies ------------------------------------------------

def test_kdump_log_is_trusted_only_when_only_root_could_write_it(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the kdump logs their owners")
    crash = tmp_path / "crash"
    # name: (owner of vmcore-dmesg.txt, owner of its directory, mode of the directory)
    cases = {"root": (0, 0, 0o755), "user_file": (NOBODY, 0, 0o755), "user_dir": (0, NOBODY, 0o755),
             "group_writable": (0, 0, 0o775)}
    funcs = {}
    for name, (file_uid, dir_uid, dir_mode) in cases.items():
        d = crash / f"127.0.0.1-2025-11-24-03:15:{len(funcs):02d}"
        d.mkdir(parents=True)
        funcs[name] = unique(f"kdump_{name}")
        f = d / "vmcore-dmesg.txt"
        f.write_text("".join(f"[  12.{i:06d}] {line}\n" for i, line in enumerate(oops(funcs[name]))))
        f.chmod(0o644)
        os.chown(f, file_uid, 0)
        os.chown(d, dir_uid, 0)
        d.chmod(dir_mode)
    spool = tmp_path / "spool"
    collect([KdumpSource(str(crash))], str(spool), host=HOST)
    [root] = dirs_with(spool, funcs["root"]).values()
    assert_kernel_sourced(root)
    [user_file] = dirs_with(spool, funcs["user_file"]).values()
    assert_unauthenticated(user_file, "kdump log", f"owned by uid {NOBODY}")
    [user_dir] = dirs_with(spool, funcs["user_dir"]).values()
    assert_unauthenticated(user_dir, "its directory is owned by uid")
    [group] = dirs_with(spool, funcs["group_writable"]).values()
    assert_unauthenticated(group, "its directory is writable by its group")


def test_pstore_records_outside_the_kernels_pstore_are_unauthenticated(tmp_path: Path) -> None:
    func = unique("pstore_copy")
    root = tmp_path / "pstore"
    root.mkdir()
    (root / "dmesg-ramoops-0").write_text("Oops#1 Part1\n" + "".join(
        f"<4>[   12.{i:06d}] {line}\n" for i, line in enumerate(oops(func))))
    spool = tmp_path / "spool"
    collect([PstoreSource(str(root))], str(spool), host=HOST)
    [elements] = dirs_with(spool, func).values()
    assert_unauthenticated(elements, str(root), "/sys/fs/pstore")
    assert PstoreSource().trusted and not PstoreSource(str(root)).trusted
    assert PstoreSource(str(root), trusted=True).trusted


def test_a_unit_no_source_vouched_for_is_unauthenticated() -> None:
    """The LogUnit default: a new source that forgets to decide marks its reports."""
    assert LogUnit("new-source", "somewhere", iter(())).unauthenticated == UNKNOWN_ORIGIN
