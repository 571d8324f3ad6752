"""What the reporter executables share: options, exit codes, logging, deliver-or-queue.

Exit codes (docs/reporting.md): 0 delivered, 1 failed for good (recorded, nothing queued),
2 bad usage or input, 3 refused: the problem is marked ``not-reportable`` (``--force``
overrides; :mod:`reporter.reporters.reportable`), 70 the uReport server already knew the problem (libreport's
``EXIT_STOP_EVENT_RUN``: stops an event chain as success), 75 queued in the outbox for a
later retry (sysexits' ``EX_TEMPFAIL``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from reporter import report_config
from reporter.errors import ProblemDirError, ReporterError
from reporter.outbox import Entry, Outbox, OutboxError, next_delay
from reporter.redact import Scrubber
from reporter.reporters import reportable

EXIT_DELIVERED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_REPORTABLE = reportable.EXIT_NOT_REPORTABLE
EXIT_KNOWN = 70
EXIT_QUEUED = 75


class ReporterUsageError(ReporterError):
    """Bad options or configuration (exit 2)."""


class Log:
    """``prog: message`` lines on stderr, secrets scrubbed; ``-v`` shows details."""

    def __init__(self, prog: str, verbose: int = 0, scrub: Scrubber | None = None,
                 stream: IO[str] | None = None) -> None:
        self.prog = prog
        self.verbose = verbose
        self.scrub = scrub or Scrubber()
        self.stream = stream

    def __call__(self, message: str) -> None:
        print(f"{self.prog}: {self.scrub(message)}", file=self.stream or sys.stderr, flush=True)

    def debug(self, message: str) -> None:
        """Only with ``-v``."""
        if self.verbose:
            self(message)


def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """``-d DIR``, ``-v``, ``-c CONF``, ``--insecure``, ``--outbox``, ``--no-queue``, ``--if-configured``,
    ``--force``."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("-d", "--problem-dir", dest="dir", default=".", metavar="DIR",
                   help="problem directory (default: the current directory, as in an event)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="say more")
    p.add_argument("-c", "--config", dest="conf", action="append", default=[], metavar="CONF",
                   help="libreport-style Key = Value configuration file (repeatable)")
    p.add_argument("-k", "--insecure", action="store_true", help="do not verify TLS certificates")
    p.add_argument("--outbox", metavar="DIR", help="outbox directory (default $CRASHKIT_OUTBOX or SPOOL/.outbox)")
    p.add_argument("--no-queue", action="store_true", help="fail instead of queueing when the server is unreachable")
    p.add_argument("--if-configured", action="store_true",
                   help="exit 0 quietly when no server is configured (for post-create rules)")
    p.add_argument("--force", action="store_true",
                   help=f"report even a problem marked not-reportable (also ${reportable.FORCE_ENV}=1)")
    return p


def refuse_not_reportable(args: argparse.Namespace, log: Log) -> int | None:
    """Exit :data:`EXIT_NOT_REPORTABLE` (with the reason logged) for a problem directory marked
    ``not-reportable``, unless forced; ``None`` when it may be reported."""
    message = reportable.refusal(args.dir, args.force)
    if message is None:
        return None
    log(f"{message} (--force reports it anyway)")
    return EXIT_NOT_REPORTABLE


def setting(env_names: Sequence[str], cli: str | None, conf: dict[str, str], conf_key: str,
            section: dict[str, Any], toml_key: str, environ: dict[str, str] | None = None) -> str | None:
    """One setting by libreport's precedence: environment > command line > -c file >
    crashkit.toml section. Empty values count as unset."""
    env = os.environ if environ is None else environ
    for name in env_names:
        if env.get(name):
            return env[name]
    if cli:
        return cli
    if conf.get(conf_key):
        return conf[conf_key]
    value = section.get(toml_key)
    return str(value) if value not in (None, "") else None


def read_secret_file(path: str | None) -> str | None:
    """The first line of a password/token file (``password_file =``)."""
    if not path:
        return None
    with open(path, encoding="utf-8") as f:
        return f.readline().rstrip("\r\n") or None


def load_conf_files(paths: list[str]) -> dict[str, str]:
    """Merged ``-c`` files (later wins)."""
    from reporter import libreport_conf

    merged: dict[str, str] = {}
    for path in paths:
        if not os.path.exists(path):
            raise ReporterUsageError(f"configuration file '{path}' does not exist")
        merged.update(libreport_conf.read(path).values)
    return merged


@dataclass
class Attempt:
    """The outcome a reporter turns into its exit code."""

    code: int
    message: str = ""


def deliver_or_queue(entry: Entry, send_body: Callable[[], Any], write_payload: Callable[[BinaryIO], object],
                     secret: dict[str, Any], *, outbox: Outbox | None, log: Log,
                     on_delivered: Callable[[Any], int]) -> int:
    """Try once now; on a temporary failure queue the report (exit 75), on a final one
    record it in ``failed/`` (exit 1). *on_delivered* gets the outcome, returns the code."""
    from reporter.reporters import delivery

    outcome = delivery.send(entry, send_body(), secret, scrub=log.scrub)
    if outcome.delivered:
        return on_delivered(outcome)
    if outcome.state == "final" or outbox is None:
        log(f"{entry.kind} to {entry.url} failed: {outcome.message}")
        if outbox is not None:
            try:
                outbox.record_failure(entry, outcome.message, outcome.status)
            except OSError as exc:
                log(f"can't record the failure in {outbox.path}: {exc.strerror}")
        return EXIT_FAILED
    try:
        entry.attempts = 1
        entry.last_error, entry.last_status = outcome.message, outcome.status
        entry.next_attempt = time.time() + next_delay(1, outcome.retry_after)
        where = outbox.put(entry, write_payload, secret or None)
    except OutboxError as exc:
        log(f"{entry.kind} to {entry.url} failed ({outcome.message}) and {exc}")
        return EXIT_FAILED
    log(f"{entry.kind} to {entry.url} not delivered ({outcome.message}); queued as {os.path.basename(where)}"
        f" in {outbox.path}")
    return EXIT_QUEUED


def outbox_for(args: argparse.Namespace, cfg: report_config.ReportConfig) -> Outbox | None:
    """The outbox a reporter queues into (``None`` with ``--no-queue``)."""
    if args.no_queue:
        return None
    if args.outbox:
        return Outbox(args.outbox)
    from reporter.outbox import OUTBOX_ENV, default_path

    if os.environ.get(OUTBOX_ENV):
        return Outbox(os.environ[OUTBOX_ENV])
    return Outbox(cfg.outbox or default_path())


def run_main(prog: str, func: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser,
             argv: Sequence[str] | None) -> int:
    """Parse, run, and turn expected errors into one line and an exit code."""
    args = parser.parse_args(argv)
    try:
        return func(args)
    except (ReporterUsageError, ProblemDirError) as exc:
        print(f"{prog}: error: {Scrubber()(' '.join(str(exc).split()))}", file=sys.stderr)
        return EXIT_USAGE
    except (ReporterError, OSError, ValueError) as exc:
        text = str(exc) if not isinstance(exc, OSError) or exc.filename is None else f"{exc.filename}: {exc.strerror}"
        print(f"{prog}: error: {Scrubber()(' '.join(text.split()))}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
