"""Run the state plugins in parallel and gather one :class:`TechResult` per technology."""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from collectors.errors import StateError
from coripper.errors import capture_internal_exceptions
from collectors.state.base import Context, NotPresent, Options, StatePlugin
from collectors.state.model import TECHS, TechResult
from collectors.state.registry import PLUGINS



def run_plugin(plugin: StatePlugin, ctx: Context) -> TechResult:
    """One plugin's result; never raises for the plugin's own failures.

    An exception that is not :class:`StateError` is a bug of ours: it becomes an ``error``
    result (logged with its traceback) through :class:`capture_internal_exceptions`, which
    re-raises it under ``CRASHKIT_STRICT`` (the tests), and the other plugins go on."""
    start = time.monotonic()
    with capture_internal_exceptions("state plugin %s", plugin.name, logger=__name__) as bug:
        return _run_plugin(plugin, ctx, start)
    exc = bug.error
    return TechResult("error", error=f"internal error: {type(exc).__name__}: {exc}",
                      duration=time.monotonic() - start)


def _run_plugin(plugin: StatePlugin, ctx: Context, start: float) -> TechResult:
    """:func:`run_plugin` without the bug boundary."""
    try:
        if not plugin.available(ctx):
            return TechResult("absent", duration=time.monotonic() - start)
        instances = plugin.collect(ctx)
    except NotPresent:
        return TechResult("absent", duration=time.monotonic() - start)
    except StateError as exc:
        return TechResult("error", error=" ".join(str(exc).split()) or type(exc).__name__,
                          duration=time.monotonic() - start)
    instances.sort(key=lambda i: (i.name or i.id, i.id))
    return TechResult("present", tuple(instances), duration=time.monotonic() - start)


def collect_state(options: Options | None = None, techs: Iterable[str] | None = None,
                  ctx: Context | None = None) -> dict[str, TechResult]:
    """``{tech: result}`` for *techs* (default: all, in :data:`TECHS` order)."""
    ctx = ctx or Context(options or Options())
    wanted = list(techs) if techs is not None else list(TECHS)
    unknown = [t for t in wanted if t not in PLUGINS]
    if unknown:
        raise StateError(f"unknown technology {unknown[0]!r} (known: {', '.join(TECHS)})")
    if not ctx.fs.is_dir("/"):
        raise StateError(f"{ctx.fs.root}: not a directory")
    plugins = [PLUGINS[t]() for t in wanted]
    with ThreadPoolExecutor(max_workers=max(len(plugins), 1), thread_name_prefix="state") as pool:
        results = list(pool.map(lambda p: run_plugin(p, ctx), plugins))
    return {p.name: r for p, r in zip(plugins, results, strict=True)}
