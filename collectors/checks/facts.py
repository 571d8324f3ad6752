"""Facts several checks share, computed once per run through :meth:`Host.memo`: this boot's
kernel log and its reports (through the oops collector), the previous boot's journal,
wtmp, the hook's installation and config, the spool, and the container/VM state."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from collectors.checks.host import Host
from collectors.checks.parsers import journal, wtmp
from collectors.oops.parse import KernelReport

log = logging.getLogger(__name__)
PREVIOUS_BOOT_LINES = 5000
MAX_KERNEL_LINES = 200_000


@dataclass(frozen=True)
class KernelLog:
    lines: tuple[str, ...]
    origin: str
    error: str | None = None


def kernel_log(host: Host) -> KernelLog:
    """This boot's kernel log: a recorded file, else ``/dev/kmsg`` (``dmesg`` as fallback)."""
    return host.memo("kernel_log", lambda: _kernel_log(host))


def _kernel_log(host: Host) -> KernelLog:
    from collectors.oops.sources import FileSource, KmsgSource
    from collectors.oops.sources.logfile import READ_ERRORS
    from coripper.errors import capture_internal_exceptions

    if host.config.kernel_log:
        src: Any = FileSource(host.config.kernel_log)
    elif host.live:
        src = KmsgSource()
    else:
        return KernelLog((), "", "no kernel log for a recorded root")
    lines: list[str] = []
    origin, errors = "", []
    # A source failure (what a damaged log or a failing tool raises) is the check's evidence;
    # anything else is a bug (re-raised under the tests).
    with capture_internal_exceptions("kernel log of %s", host.config.kernel_log or "this boot",
                                     expected=READ_ERRORS, logger=__name__) as failed:
        for unit in src.units({}):
            origin = unit.origin
            for line in unit.lines:
                if len(lines) < MAX_KERNEL_LINES:
                    lines.append(line)
            errors.extend(unit.errors)
    if failed.error is not None:
        errors.append(" ".join(str(failed.error).split()) or type(failed.error).__name__)
    return KernelLog(tuple(lines), origin, "; ".join(errors) or None)


def kernel_reports(host: Host) -> tuple[KernelReport, ...]:
    """The oops collector's reports of this boot's kernel log."""
    from collectors.oops.parse import scan_lines

    return host.memo("kernel_reports", lambda: tuple(scan_lines(kernel_log(host).lines)))


@dataclass(frozen=True)
class PreviousBoot:
    entries: tuple[journal.Entry, ...]
    kernel_reports: tuple[KernelReport, ...]
    error: str | None = None


def previous_boot(host: Host) -> PreviousBoot | None:
    """The previous boot in the journal (``None``: no journal or no previous boot)."""
    return host.memo("previous_boot", lambda: _previous_boot(host))


def _previous_boot(host: Host) -> PreviousBoot | None:
    if not host.journal_available():
        return None
    res = host.journalctl(["-b", "-1", "-o", "short-unix", "-n", str(PREVIOUS_BOOT_LINES)])
    if res.absent or not res.ok:
        return None
    entries = journal.parse_short_unix(res.stdout.decode("utf-8", "replace").splitlines())
    if not entries:
        return None
    from collectors.oops.parse import scan_lines

    kres = host.journalctl(["-k", "-b", "-1", "-o", "short-precise"], timeout=60)
    reports = tuple(scan_lines(kres.stdout.decode("utf-8", "replace").splitlines())) if kres.ok else ()
    return PreviousBoot(tuple(entries), reports, None if kres.ok else kres.failure)


def wtmp_end(host: Host) -> tuple[wtmp.BootEnd | None, str]:
    """How wtmp says the previous boot ended, and the file read."""
    path = host.config.wtmp or host.path("/var/log/wtmp")

    def compute() -> tuple[wtmp.BootEnd | None, str]:
        try:
            with open(path, "rb") as f:
                data = f.read(64 << 20)
        except OSError:
            return None, path
        return wtmp.previous_boot_end(list(wtmp.parse_wtmp(data))), path

    return host.memo("wtmp", compute)


@dataclass(frozen=True)
class HookFacts:
    """The crash hook as installed here: its status (``crashkit hook status --json``), the
    config it runs with, and the spool."""

    status: dict[str, Any]
    config: Any
    config_path: str
    spool: str
    errors: tuple[str, ...] = field(default=())


def hook(host: Host) -> HookFacts:
    return host.memo("hook", lambda: _hook(host))


def _hook(host: Host) -> HookFacts:
    from collectors.corehook import config as config_mod
    from collectors.corehook import install
    from reporter.dumpdir import spool_path

    paths = install.default_paths(host.config.state_dir)
    if not host.live:
        paths = install.Paths(paths.state_dir, host.path("/proc/sys/kernel"))
    errors: list[str] = []
    try:
        status = install.status(paths)
    except (OSError, ValueError) as exc:
        status = {"installed": False, "core_pattern": None}
        errors.append(f"hook status: {exc}")
    cfg_path = paths.hook_config if status.get("installed") else config_mod.config_path()
    cfg = config_mod.load_config(cfg_path)
    errors.extend(cfg.warnings)
    spool = host.config.spool or (cfg.spool if status.get("installed") else spool_path())
    return HookFacts(status, cfg, cfg_path, spool, tuple(errors))


def state(host: Host) -> dict[str, Any]:
    """``crashkit state --json`` of this root (collected once; given by diagnose)."""
    if host.config.state_json is not None:
        return dict(host.config.state_json)

    def compute() -> dict[str, Any]:
        from collectors.state import render
        from collectors.state.base import Options
        from collectors.state.collect import collect_state

        return render.state_json(collect_state(Options(root=host.root)))

    return host.memo("state", compute)


def systemd_running(host: Host) -> bool:
    """systemd is PID 1 (``/run/systemd/system`` exists, as sd_booted() checks)."""
    return os.path.isdir(host.path("/run/systemd/system"))
