"""``crashkit-hook``: the core_pattern pipe handler (``python -m collectors.corehook.hook``).

The kernel runs this as root, with an empty environment, for every core dump on the host,
and waits (``core_pipe_limit``) until it has read the core from stdin. So it: keeps its own
crashes from recursing (RLIMIT_CORE stays 1: the kernel refuses to pipe-dump a process whose
limit is 1), arms a hard time limit, never lets an exception escape, always drains stdin,
always exits 0, and logs one line per crash. Start-up imports stay small, in two steps:
first the light path of :mod:`.gate` (``os``, ``fcntl``, ``time``), which takes a
full-capture slot or sheds the crash; only with a slot held, the standard library,
:mod:`reporter.dumpdir` and :mod:`coripper.minimizer.stream` (docs/hook.md, measurements).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType
    from typing import NoReturn

EXIT_OK = 0
#: Seconds the light path (:mod:`.gate`: slot, shed, fold) may take before SIGALRM ends it.
LIGHT_TIME_LIMIT = 300
# After a timeout we still try to drain stdin for this long before giving up.
DRAIN_GRACE = 30


class HookTimeout(BaseException):
    """The hard time limit expired (BaseException: no ``except Exception`` may swallow it)."""


def _on_alarm(signum: int, frame: FrameType | None) -> NoReturn:
    raise HookTimeout()


def _sane_fds() -> None:
    """Make fds 0-2 valid (the usermode helper may start us without stdout/stderr)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                null = os.open(os.devnull, os.O_RDWR)
                if null != fd:
                    os.dup2(null, fd)
                    os.close(null)
            except OSError:
                pass


def _no_recursion() -> None:
    """Keep RLIMIT_CORE at 1, the kernel's own recursion guard for pipe helpers
    (fs/coredump.c refuses to pipe-dump a task whose limit is exactly 1; 0 would not stop a
    pipe dump). Our children inherit it."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (1, 1))
    except (OSError, ValueError, ImportError):
        pass


#: Address-space cap of the hook (and what it starts): the minimizer bounds what it keeps of
#: a core (64 MiB of notes, 2**17 program headers), so a hostile core that still gets the
#: hook this far is a bug to be contained, not a reason to exhaust the host as root.
MEMORY_LIMIT = 4 << 30


def _bound_memory() -> None:
    """Lower RLIMIT_AS to :data:`MEMORY_LIMIT` (never raise it)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = MEMORY_LIMIT if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, ValueError, ImportError):
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point; always returns 0."""
    _no_recursion()
    _bound_memory()
    _sane_fds()
    os.umask(0o077)
    os.environ["CRASHKIT_HOOK_CHILD"] = "1"
    words = sys.argv[1:] if argv is None else list(argv)
    import _signal  # built in and loaded at start-up, unlike signal (enum)

    _signal.alarm(LIGHT_TIME_LIMIT)  # SIGALRM's default action ends a stuck light path
    from collectors.corehook import gate

    slot = gate.admit(words)
    if slot == gate.SHED:
        return EXIT_OK
    import signal

    from collectors.corehook import hooklog

    deadline = 300
    try:
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(deadline)  # until the config says otherwise
        from collectors.corehook.args import parse_args
        from collectors.corehook.config import config_path, load_config

        # The config first (it names the log file), then the kernel's arguments.
        given = next((w[len("--config="):] for w in words[:2] if w.startswith("--config=")), None)
        cfg = load_config(config_path(given if given and given.startswith("/") else None))
        hooklog.setup(cfg.log_file)
        for warning in cfg.warnings:
            hooklog.log(f"config: {warning}")
        args = parse_args(words)
        deadline = cfg.time_limit
        signal.alarm(deadline)
        from collectors.corehook.capture import capture

        capture(args, cfg, slot=None if slot == gate.UNDECIDED else slot)
    except HookTimeout:
        hooklog.log(f"time limit of {deadline} s reached: giving up on this crash", error=True)
    except BaseException as exc:  # noqa: BLE001 - the kernel must never see us fail
        hooklog.log(f"error: {_one_line(exc)}", error=True)
    finally:
        try:
            signal.alarm(DRAIN_GRACE)
            gate.drain(0)
        except BaseException:  # noqa: BLE001
            pass
        finally:
            signal.alarm(0)
    return EXIT_OK


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror or exc}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:500]


if __name__ == "__main__":
    sys.exit(main())
