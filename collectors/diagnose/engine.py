"""Running the sections: in parallel where their inputs allow, each in its own thread with
its own time limit (a section still running at its limit is recorded as timed out and its
later items are refused), progress shown as they go."""

from __future__ import annotations

import importlib
import pkgutil
import threading
import time
from collections.abc import Sequence
from typing import Any

from collectors.diagnose.base import Options, Section, SectionContext, SectionRun
from collectors.diagnose.bundle import Bundle
from collectors.diagnose.progress import Progress
from coripper.errors import capture_internal_exceptions

PARALLEL = 4


def all_sections() -> list[type[Section]]:
    """Every section of :mod:`collectors.diagnose.sections`, in definition order."""
    from collectors.diagnose import sections

    for mod in sorted(pkgutil.iter_modules(sections.__path__), key=lambda m: m.name):
        importlib.import_module(f"{sections.__name__}.{mod.name}")
    seen: dict[str, type[Section]] = {}
    for cls in Section.registry:
        seen.setdefault(cls.name, cls)
    return list(seen.values())


def run_sections(bundle: Bundle, options: Options, progress: Progress,
                 sections: Sequence[type[Section]] | None = None) -> tuple[list[SectionRun], dict[str, Any]]:
    """Run every section; returns how each went and what they shared."""
    todo = list(sections or all_sections())
    shared: dict[str, Any] = {}
    runs = {c.name: SectionRun(c.name, c.title, c.time_limit, c.budget) for c in todo}
    done: set[str] = set()
    active: dict[str, tuple[threading.Thread, SectionContext, float]] = {}
    finished = threading.Event()

    bugs: list[Exception] = []

    def body(cls: type[Section], ctx: SectionContext) -> None:
        # Sections record their failures: an exception is a bug, and a broken section must
        # not lose the bundle (logged, status "error"; re-raised under CRASHKIT_STRICT).
        run = runs[cls.name]
        try:
            with capture_internal_exceptions("diagnose section %s", cls.name, logger=__name__) as bug:
                cls().collect(ctx)
                run.status = "ok"
            if bug.error is not None:
                run.status, run.error = "error", f"{type(bug.error).__name__}: {bug.error}"
        except Exception as exc:  # noqa: BLE001 - the strict mode's bug, raised in the caller's thread
            run.status, run.error = "error", f"{type(exc).__name__}: {exc}"
            bugs.append(exc)
        finally:
            finished.set()

    while todo or active:
        for cls in list(todo):
            if len(active) < PARALLEL and all(d in done or d not in runs for d in cls.after):
                todo.remove(cls)
                ctx = SectionContext(cls(), bundle, options, shared, time.monotonic() + cls.time_limit)
                t = threading.Thread(target=body, args=(cls, ctx), name=f"diagnose-{cls.name}", daemon=True)
                active[cls.name] = (t, ctx, time.monotonic())
                progress.start(cls.name, cls.title)
                t.start()
        finished.wait(0.05)
        finished.clear()
        for name, (t, ctx, started) in list(active.items()):
            run = runs[name]
            if not t.is_alive() or time.monotonic() > ctx.deadline:
                if t.is_alive():
                    ctx.closed = True
                    run.status, run.error = "timed out", f"cut at its time limit of {run.time_limit:g} s"
                run.duration = time.monotonic() - started
                run.items, run.size = ctx.items, ctx.used
                del active[name]
                done.add(name)
                progress.finish(name, run)
    if bugs:
        raise bugs[0]
    return [runs[c.name] for c in (sections or all_sections())], shared
