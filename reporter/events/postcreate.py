"""The ``post-create`` event of a freshly captured crash, for the crash hook's post-processing.

:func:`run_post_create` runs the event on a directory with the configured rules (libreport's
``/etc/libreport/report_event.conf`` when installed, else crashkit's own) when
``[report] post_create = true`` (or when forced); each command gets
``[report] post_create_timeout`` seconds. A failing command is logged; unlike abrtd,
crashkit never deletes the directory for it. ``python -m reporter.events.postcreate DIR``
does the same from a detached process.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from reporter import report_config

EVENT = "post-create"


@dataclass
class PostCreateResult:
    """What the event did: skipped (not configured), the exit status, the output lines."""

    skipped: bool = False
    rc: int = 0
    commands: int = 0
    lines: list[str] = field(default_factory=list)
    error: str | None = None


def enabled(cfg: report_config.ReportConfig | None = None) -> bool:
    """``[report] post_create`` of crashkit.toml."""
    return (cfg or report_config.load()).post_create


def run_post_create(path: str, *, force: bool = False, log: Callable[[str], None] | None = None,
                    timeout: float | None = None, config: str | None = None) -> PostCreateResult:
    """Run ``post-create`` on *path* if configured (or *force*); never raises for the event's
    own failures (``error`` says what went wrong).

    *config* names the crashkit TOML file to read ``[report]`` from (the hook, started by the
    kernel with an empty environment, passes its own config file); the event's commands get
    it as ``$CRASHKIT_CONFIG``, so the reporters read the same settings.
    """
    from reporter.errors import ReporterError
    from reporter.events import setup

    cfg = report_config.load(config)
    if not (force or cfg.post_create):
        return PostCreateResult(skipped=True)
    result = PostCreateResult()

    def keep(line: str) -> None:
        result.lines.append(line)
        if log is not None:
            log(line)

    try:
        chain = setup.run_chain(setup.EventsSetup.default(cfg), path, [EVENT], log=keep, warn=log,
                                timeout=timeout if timeout is not None else cfg.post_create_timeout,
                                extra_env={report_config.CONFIG_ENV: config} if config else None)
    except (ReporterError, OSError) as exc:
        result.error = str(exc)
        result.rc = 1
        return result
    result.commands = sum(len(r.commands) for r in chain.runs)
    result.rc = chain.rc
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m reporter.events.postcreate DIR [--force]``."""
    p = argparse.ArgumentParser(prog="crashkit-post-create", description="run the post-create event on DIR")
    p.add_argument("dir")
    p.add_argument("--force", action="store_true", help="run even if [report] post_create is not set")
    p.add_argument("--config", help="crashkit TOML file with the [report] settings")
    args = p.parse_args(argv)
    res = run_post_create(args.dir, force=args.force, config=args.config,
                          log=lambda line: print(line, file=sys.stderr))
    if res.error:
        print(f"crashkit-post-create: {res.error}", file=sys.stderr)
    return res.rc


if __name__ == "__main__":
    sys.exit(main())
