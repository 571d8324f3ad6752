"""Run the state plugins in parallel and gather one :class:`TechResult` per technology."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from collectors.errors import StateError
from collectors.state.base import Context, NotPresent, Options, StatePlugin
from collectors.state.model import TECHS, TechResult
from collectors.state.registry import PLUGINS

log = logging.getLogger(__name__)
#: Set (to anything) under the tests: a bug in a plugin then fails loudly instead of
#: becoming an ``error`` result (the sentry-python capture_internal_exceptions pattern).
RAISE_INTERNAL = "CRASHKIT_RAISE_INTERNAL_ERRORS"


def run_plugin(plugin: StatePlugin, ctx: Context) -> TechResult:
    """One plugin's result; never raises for the plugin's own failures."""
    start = time.monotonic()
    try:
        if not plugin.available(ctx):
            return TechResult("absent", duration=time.monotonic() - start)
        instances = plugin.collect(ctx)
    except NotPresent:
        return TechResult("absent", duration=time.monotonic() - start)
    except StateError as exc:
        return TechResult("error", error=" ".join(str(exc).split()) or type(exc).__name__,
                          duration=time.monotonic() - start)
    except Exception as exc:  # a bug of ours: reported, the other plugins go on
        if os.environ.get(RAISE_INTERNAL):
            raise
        log.exception("state plugin %s failed", plugin.name)
        return TechResult("error", error=f"internal error: {type(exc).__name__}: {exc}",
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
