"""``crashkit diagnose [-o FILE.tar.zst|.tar.gz] [--html FILE] [--since TIME] [--clean]
[--self-test] [--with-cores]``: the support bundle and its HTML report."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``diagnose`` command."""
    p = subparsers.add_parser(
        "diagnose", help="support bundle and self-contained HTML report of this host",
        description="Run the host checks and pack what is needed to find out why into one archive "
                    "(manifest.json, report.html, the sections), with an HTML report a person reads "
                    "first. Exit 0 when every check passed, 1 when a check warned or failed, 2 on bad usage.")
    p.add_argument("-o", "--output", metavar="FILE", help="the archive, .tar.zst or .tar.gz "
                   "(default ./crashkit-diagnose-HOST-DATE.tar.zst)")
    p.add_argument("--html", metavar="FILE", help="also write the HTML report here")
    p.add_argument("--since", metavar="TIME", help="collect logs, kernel reports and crashes from TIME on: "
                   "ISO date/time, @UNIX, or a relative -2h/-3d (default -7d)")
    p.add_argument("--clean", action="store_true", help="obfuscate host names, domains, addresses, MACs, "
                   "user names and secrets (mapping kept in FILE.mapping.json, outside the archive)")
    p.add_argument("--self-test", action="store_true", help="include the end-to-end crash self-test in the checks")
    p.add_argument("--with-cores", action="store_true", help="include the minimized cores of the problem directories")
    p.add_argument("--spool", metavar="DIR", help="the spool (default: the installed hook's)")
    p.add_argument("--budget", metavar="MB", type=float, help="global size budget in MB of collected text (default 256)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run_diagnose)


def run_diagnose(args: argparse.Namespace) -> int:
    """Handler of ``crashkit diagnose``."""
    from collectors.diagnose.main import run

    return run(args)
