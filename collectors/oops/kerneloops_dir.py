"""Kerneloops problem directories, as ABRT's abrt-dump-oops writes them (docs/formats/libreport.md §5.5).

One directory per distinct report, named ``oops-<local date>-<pid>-<index>``, with
``type=Kerneloops``, ``analyzer=abrt-oops``, ``backtrace`` (the report text), ``kernel``,
``reason``, ``crash_function``, ``duphash`` = ``uuid`` (ABRT's hash, §5.6), the taint
elements and ``not-reportable`` in ABRT's words, ``cmdline`` (= /proc/cmdline),
``proc_modules`` and libreport's basic files. Our additions: ``kernel_report.json`` (the
full parsed record and where it was found), ``oops_kind`` and ``oops_title``, and for a
report read from a log that others than the kernel can write (a syslog file),
``kernel_log_unauthenticated`` with ``not-reportable`` (docs/oops-collect.md).

A report whose hash is already in the spool (same ``type`` and ``duphash``/``uuid``)
bumps ``count`` and ``last_occurrence`` of that directory instead, as abrtd does for a
duplicate; unauthenticated reports and kernel-sourced ones are never merged.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reporter.dumpdir import DumpDir, iter_problem_dirs
from reporter.elements import iso_date
from reporter.errors import ProblemDirError

from collectors.oops.koops_hash import abrt_crash_function, abrt_reason
from collectors.oops.taint import abrt_tainted_long, abrt_tainted_short

log = logging.getLogger(__name__)

TYPE = "Kerneloops"
ANALYZER = "abrt-oops"
# The <index> of oops-<date>-<pid>-<index>, unique within this process (abrt-dump-oops
# numbers the oopses of one run from 0).
_INDEX = itertools.count()

# ABRT's not-reportable sentences (abrt src/lib/oops-utils.c, abrt-action-analyze-oops).
BROKEN_BIOS = ("A kernel problem occurred because of broken BIOS. Unfortunately, such "
               "problems are not fixable by kernel maintainers.")
UNSUPPORTED_HW = ("A kernel problem occurred, but your hardware is unsupported, therefore "
                  "kernel maintainers are unable to fix this problem.")
TAINTED = ("A kernel problem occurred, but your kernel has been tainted (flags:{flags}). "
           "Explanation:\n{explanation}Kernel maintainers are unable to diagnose tainted reports.")
TAINTED_MODULES = " Tainted modules: {modules}."
UNAUTHENTICATED = "This report is not known to come from the kernel: {reason}."
UNAUTHENTICATED_WHY = (" Lines that look like the kernel's can be forged there, so it is not reported "
                       "unless you have checked that the kernel printed it (dmesg, journalctl -k).")
UNAUTHENTICATED_ELEMENT = "kernel_log_unauthenticated"
NO_FRAMES = ("The backtrace does not contain enough meaningful function frames to be "
             "reported. It is annoying but it does not necessarily signalize a problem with "
             "your computer. ABRT will not allow you to create a report in a bug tracking "
             "system but you can contact kernel maintainers via e-mail.")


@dataclass(frozen=True)
class HostInfo:
    """What the host contributes to every Kerneloops directory (read once per run)."""

    kernel: str
    architecture: str
    hostname: str
    os_info: str | None
    os_release: str | None
    cmdline: str | None
    proc_modules: str | None
    fips_enabled: str | None

    @classmethod
    def from_root(cls, root: str = "/") -> HostInfo:
        """Read the host's files under ``root`` (``/`` in production, a fixture tree in tests)."""
        uname = os.uname()

        def read(rel: str) -> str | None:
            try:
                with open(os.path.join(root, rel), "rb") as f:
                    data = f.read(4 << 20)
            except OSError:
                return None
            return data.decode("utf-8", "replace").replace("\x00", " ")

        os_release = None
        for rel in ("etc/system-release", "etc/redhat-release", "etc/SuSE-release"):
            text = read(rel)
            if text and text.strip():
                os_release = text.strip().splitlines()[0]
                break
        cmdline = read("proc/cmdline")
        fips = read("proc/sys/crypto/fips_enabled")
        return cls(kernel=uname.release, architecture=uname.machine,
                   hostname=socket.gethostname() or uname.nodename,
                   os_info=read("etc/os-release"), os_release=os_release,
                   cmdline=cmdline.strip() if cmdline else None,
                   proc_modules=read("proc/modules"),
                   fips_enabled=fips.strip() if fips else None)


def tainted_modules(proc_modules: str) -> str | None:
    """Names of modules whose ``/proc/modules`` taint flags ``(…)`` start with a letter,
    joined by commas (abrt's list_of_tainted_modules); None when there are none."""
    names = []
    for line in proc_modules.splitlines():
        paren = line.find("(")
        if paren >= 0 and paren + 1 < len(line) and line[paren + 1].isalpha():
            names.append(line.split(" ", 1)[0])
    return ",".join(names) or None


def not_reportable(text: str, proc_modules: str | None) -> tuple[str | None, str | None, str | None]:
    """``(not-reportable, kernel_tainted_short, kernel_tainted_long)`` as ABRT decides them."""
    if "Your BIOS is broken" in text:
        return BROKEN_BIOS, None, None
    if "Your hardware is unsupported" in text:
        return UNSUPPORTED_HW, None, None
    short = abrt_tainted_short(text)
    if not short:
        return None, None, None
    long = abrt_tainted_long(short)
    reason = TAINTED.format(flags=short, explanation=long)
    modules = tainted_modules(proc_modules) if proc_modules else None
    if modules:
        reason += TAINTED_MODULES.format(modules=modules)
    return reason, short, long


_SYSLOG_HEAD = re.compile(
    r"^(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)?|\d{4}-\d\d-\d\dT\S+|<\d+>1 \S+)"
    r" \S+ kernel(?:\[\d+\])?: ")
_LINE_PREFIX = re.compile(r"^(?:\d+,\d+,\d+,[^;]*;)?(?:<\d+>)?(?:\[\s*\d+\.\d+\])?(?:\[\s*[TC]\d+\])?\s?")


def occurrence_key(report: Any) -> str:
    """Fingerprint of one occurrence of a report, the same whichever log it was read from.

    The text with log prefixes (syslog/journal header, ``<N>``, ``[ secs]``, caller id,
    kmsg record prefix) removed, hashed. The same oops read from /dev/kmsg, the journal
    and kern.log gives one key; two occurrences of one bug differ in registers, PIDs or
    addresses and give two.
    """
    h = hashlib.sha1()
    for line in report.text.splitlines():
        line = _LINE_PREFIX.sub("", _SYSLOG_HEAD.sub("", line)).rstrip()
        if line:
            h.update(line.encode("utf-8", "replace") + b"\n")
    return h.hexdigest()


def report_hash(report: Any) -> tuple[str, bool]:
    """``(duphash, has_frames)``: ABRT's hash, or for a report without reliable frames
    (ABRT would drop it) SHA-1 of ``Kerneloops`` + its title, which has no run-specific
    numbers, so repeats of a frameless report still deduplicate."""
    if report.duphash:
        return report.duphash, True
    text = f"Kerneloops\n{report.title}\n"
    return hashlib.sha1(text.encode("utf-8", "replace")).hexdigest(), False


@dataclass(frozen=True)
class WriteResult:
    """What :meth:`OopsDirWriter.write` did: ``created`` a dir or bumped a ``duplicate``."""

    path: str
    created: bool
    count: int


class OopsDirWriter:
    """Writes reports into one spool; keeps an index of the Kerneloops hashes there."""

    def __init__(self, spool: str, host: HostInfo, *, pid: int | None = None,
                 clock: Callable[[], float] = time.time, mode: int = 0o640,
                 proc: str = "/proc") -> None:
        self.spool = spool
        self.host = host
        self.proc = proc                # where the task a report names is looked up
        self.pid = os.getpid() if pid is None else pid
        self.clock = clock
        self.mode = mode
        # (hash, unauthenticated) -> directory: a forged report never bumps a kernel one's
        # count, and a kernel report never joins a forged (not reportable) directory.
        self._by_hash: dict[tuple[str, bool], str] | None = None

    def _index(self) -> dict[tuple[str, bool], str]:
        if self._by_hash is None:
            self._by_hash = {}
            for path in iter_problem_dirs(self.spool):
                try:
                    with DumpDir.open(path, readonly=True, wait=False) as dd:
                        if dd.load_text("type").strip() != TYPE:
                            continue
                        forged = dd.has_element(UNAUTHENTICATED_ELEMENT)
                        for name in ("duphash", "uuid"):
                            value = dd.load_text(name).strip()
                            if value:
                                self._by_hash.setdefault((value, forged), path)
                except (ProblemDirError, OSError) as exc:
                    log.debug("%s: not indexed: %s", path, exc)
        return self._by_hash

    def refresh(self) -> None:
        """Forget the hash index (another process may have written to the spool)."""
        self._by_hash = None

    def find_duplicate(self, duphash: str, *, unauthenticated: bool = False) -> str | None:
        """Existing Kerneloops directory with this hash (and as authenticated), if any."""
        key = (duphash, unauthenticated)
        path = self._index().get(key)
        if path is not None and not os.path.isdir(path):
            del self._index()[key]
            return None
        return path

    def write(self, report: Any, *, origin: str = "", unauthenticated: str | None = None) -> WriteResult:
        """Create the directory for ``report`` or bump the duplicate already in the spool.
        ``unauthenticated`` says why the report is not known to be the kernel's (None: it is)."""
        now = self.clock()
        duphash, has_frames = report_hash(report)
        key = (duphash, unauthenticated is not None)
        dup = self.find_duplicate(duphash, unauthenticated=key[1])
        if dup is not None:
            try:
                with DumpDir.open(dup) as dd:
                    count = dd.increment_count(now)
                return WriteResult(dup, False, count)
            except ProblemDirError as exc:  # deleted or broken meanwhile: write a new one
                log.info("%s: duplicate not usable (%s); creating a new directory", dup, exc)
                self._index().pop(key, None)
        name = f"oops-{iso_date(now)}-{self.pid}-{next(_INDEX)}"
        os.makedirs(self.spool, mode=0o755, exist_ok=True)
        dd = DumpDir.create(self.spool, name, mode=self.mode)
        try:
            self._fill(dd, report, now, duphash, has_frames, origin)
            for element, value in task_container(report, origin, self.proc).items():
                dd.save_bytes(element, value)
            if unauthenticated is not None:
                _mark_unauthenticated(dd, unauthenticated)
            path = dd.commit()
        except BaseException:
            dd.discard()
            raise
        finally:
            dd.close()
        self._index()[key] = path
        return WriteResult(path, True, 1)

    def _fill(self, dd: DumpDir, report: Any, now: float, duphash: str, has_frames: bool,
              origin: str) -> None:
        host = self.host
        text = report.text if report.text.endswith("\n") else report.text + "\n"
        dd.set_time(now)
        dd.save_int("count", 1)
        dd.save_text("type", TYPE)
        dd.save_text("analyzer", ANALYZER)
        dd.save_text("kernel", report.kernel_version or host.kernel)
        dd.save_text("architecture", host.architecture)
        dd.save_text("hostname", host.hostname)
        if host.os_info:
            dd.save_text("os_info", host.os_info)
        if host.os_release:
            dd.save_text("os_release", host.os_release)
        if host.cmdline is not None:
            dd.save_text("cmdline", host.cmdline)
        if host.proc_modules is not None:
            dd.save_text("proc_modules", host.proc_modules)
        if host.fips_enabled and host.fips_enabled != "0":
            dd.save_text("fips_enabled", host.fips_enabled)
        dd.save_text("backtrace", text)
        dd.save_text("reason", abrt_reason(report.text))
        crash_function = abrt_crash_function(report.text)
        if crash_function:
            dd.save_text("crash_function", crash_function)
        dd.save_text("duphash", duphash)
        dd.save_text("uuid", duphash)
        why, short, long = not_reportable(report.text, host.proc_modules)
        if short is not None:
            dd.save_text("kernel_tainted_short", short)
            dd.save_text("kernel_tainted_long", long or "")
        if why is None and not has_frames:
            why = NO_FRAMES
        if why is not None:
            dd.save_text("not-reportable", why)
        dd.save_text("oops_kind", report.kind)
        dd.save_text("oops_title", report.title)
        record = dict(report.to_json_dict())
        record["source"] = origin
        dd.save_text("kernel_report.json", json.dumps(record, indent=1, sort_keys=True) + "\n")


def task_container(report: Any, origin: str = "", proc: str = "/proc") -> dict[str, bytes]:
    """The ``container*`` elements (as the crash hook writes them) of the container or VM whose
    task was running when the kernel made *report*: its ``PID:``/``Comm:`` when that process
    still exists, attributed by :func:`collectors.state.attribution.attribute_pid`.

    A recycled PID is not blamed: ``/proc/PID/comm`` must be the report's ``Comm`` before
    and after the attribution, and a report from an earlier boot (pstore, a kdump
    ``vmcore-dmesg``, another boot's journal) names no process of this one. Empty for the
    host, the idle task, or a task that is gone."""
    pid, comm = getattr(report, "pid", None), getattr(report, "comm", None)
    if not pid or not comm or _from_an_earlier_boot(origin, proc) or _comm(pid, proc) != comm:
        return {}
    from collectors.corehook.container import element_kind
    from collectors.corehook.procsnap import format_cmdline_element
    from collectors.state.attribution import attribute_pid

    att = attribute_pid(pid, proc)
    if att.tech is None or _comm(pid, proc) != comm:
        return {}
    out = {"container": element_kind(att.tech).encode()}
    if att.id:
        out["container_id"] = att.id.encode("utf-8", "surrogateescape")
    if att.uuid:
        out["container_uuid"] = att.uuid.encode()
    if att.cmdline:
        out["container_cmdline"] = format_cmdline_element(att.cmdline)
    return out


def _comm(pid: int, proc: str) -> str | None:
    """``/proc/PID/comm`` without its newline (None: no such task)."""
    try:
        with open(f"{proc}/{pid}/comm", "rb") as f:
            return f.read(64).decode("utf-8", "replace").rstrip("\n")
    except OSError:
        return None


def _from_an_earlier_boot(origin: str, proc: str) -> bool:
    """True for a log that holds only earlier boots' reports: pstore and kdump keep what a
    crashed kernel printed, and ``journal boot ID`` names its boot."""
    if origin.startswith("pstore") or "vmcore-dmesg" in origin or origin.startswith("/var/crash/"):
        return True
    if origin.startswith("journal boot "):
        try:
            with open(f"{proc}/sys/kernel/random/boot_id", "rb") as f:
                boot = f.read(64).decode("ascii", "replace").strip().replace("-", "")
        except OSError:
            return False
        return origin.split()[-1].replace("-", "") != boot
    return False


def _mark_unauthenticated(dd: DumpDir, reason: str) -> None:
    """``kernel_log_unauthenticated``, and ``not-reportable`` led by the same sentence."""
    sentence = UNAUTHENTICATED.format(reason=reason)
    dd.save_text(UNAUTHENTICATED_ELEMENT, sentence + "\n")
    other = dd.load_text("not-reportable")
    dd.save_text("not-reportable", sentence + UNAUTHENTICATED_WHY + ("\n" + other if other else ""))
