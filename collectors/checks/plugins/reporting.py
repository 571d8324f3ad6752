"""Reporting checks: problem directories not yet reported, spool entries that are not valid
problem directories, and the crash hook's own errors.

Extension point: the reporting issue's outbox checks (pending uploads, failing reporters)
go into a new module of this package with ``phase = "reporting"``; nothing here needs to
change for them.
"""

from __future__ import annotations

import os
import re

from collectors.checks import facts
from collectors.checks.base import Check, Result, passed, skip, warn
from collectors.checks.host import Host

LOG_TAIL = 1 << 20
_ERROR = re.compile(r"\berror\b|\bfailed\b|could not|Traceback|time limit", re.I)


class Unreported(Check):
    id = "reporting.unreported"
    phase = "reporting"
    title = "Problem directories not yet reported"

    def run(self, host: Host) -> Result:
        from reporter.dumpdir import iter_problem_dirs

        spool = facts.hook(host).spool
        path = host.path(spool)
        if not os.path.isdir(path):
            return skip(f"no spool at {spool}")
        try:
            dirs = list(iter_problem_dirs(path))
        except OSError as exc:      # e.g. run as a user who may not read the root-only spool
            return skip(f"the spool {spool} cannot be read: {exc.strerror or exc}", (),
                        "Run crashkit check as root to see the spool.")
        pending = [d for d in dirs if not os.path.exists(os.path.join(d, "reported_to"))]
        ev = [f"spool {spool}: {len(dirs)} problem directories"] + \
             [f"not reported: {os.path.basename(d)}: {_reason(d)}" for d in pending[:20]]
        if pending:
            return warn(f"{len(pending)} of {len(dirs)} problem directories not reported yet", ev,
                        "Report them (`crashkit report DIR`) or pack them with `crashkit diagnose`.")
        return passed(f"{len(dirs)} problem directories, all reported", ev)


def _reason(path: str) -> str:
    try:
        with open(os.path.join(path, "reason"), "rb") as f:
            return " ".join(f.read(200).decode("utf-8", "replace").split())
    except OSError:
        return "(no reason)"


class SpoolEntries(Check):
    id = "reporting.spool_entries"
    phase = "reporting"
    title = "Spool entries that are not valid problem directories"

    def run(self, host: Host) -> Result:
        from collectors.checks.spoolscan import scan_spool

        spool = facts.hook(host).spool
        if not os.path.isdir(host.path(spool)):
            return skip(f"no spool at {spool}")
        bad = [e for e in scan_spool(host.path(spool)) if e.problem]
        ev = [f"{e.name}: {e.problem}" for e in bad]
        if bad:
            return warn(f"{len(bad)} spool entr{'y is' if len(bad) == 1 else 'ies are'} not valid problem "
                        f"directories: {ev[0]}", ev,
                        "Inspect and remove them (`crashkit info DIR`, rm -r); the hook never reads them.")
        return passed("every spool entry is a valid problem directory")


class HookErrors(Check):
    id = "reporting.hook_errors"
    phase = "reporting"
    title = "The crash hook's own errors"

    def run(self, host: Host) -> Result:
        hk = facts.hook(host)
        ev: list[str] = [f"config warning: {w}" for w in hk.errors]
        looked = []
        log_file = hk.config.log_file
        if log_file:
            looked.append(log_file)
            try:
                with open(host.path(log_file), "rb") as f:
                    f.seek(max(os.fstat(f.fileno()).st_size - LOG_TAIL, 0))
                    tail = f.read().decode("utf-8", "replace").splitlines()
                ev += [line for line in tail if _ERROR.search(line)][-20:]
            except OSError as exc:
                ev.append(f"{log_file}: {exc.strerror}")
        if host.journal_available():
            res = host.journalctl(["-t", "crashkit-hook", "-p", "err", "-o", "short-iso", "--since", "-7d"])
            if res.ok:
                looked.append("journal (crashkit-hook, priority err, 7 days)")
                ev += [line for line in res.stdout.decode("utf-8", "replace").splitlines()
                       if line.strip() and not line.startswith("--")][-20:]
        if not looked and not ev:
            return skip("the hook has no log file and there is no journal to read")
        if ev:
            return warn(f"the crash hook logged {len(ev)} error(s): {ev[-1][:160]}", ev,
                        "Fix the cause named in the lines above; `crashkit hook status` shows the setup.")
        return passed("no hook errors logged", ["looked at: " + ", ".join(looked)])
