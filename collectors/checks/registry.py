"""Finding the check plugins: every module of :mod:`collectors.checks.plugins`, imported
once, registers its :class:`~collectors.checks.base.Check` subclasses."""

from __future__ import annotations

import importlib
import pkgutil

from collectors.checks.base import PHASES, Check

_loaded = False


def all_checks() -> list[type[Check]]:
    """Every registered check, by phase order then definition order."""
    global _loaded
    if not _loaded:
        from collectors.checks import plugins

        for mod in sorted(pkgutil.iter_modules(plugins.__path__), key=lambda m: m.name):
            importlib.import_module(f"{plugins.__name__}.{mod.name}")
        _loaded = True
    order = {p: i for i, p in enumerate(PHASES)}
    seen: dict[str, type[Check]] = {}
    for cls in Check.registry:
        seen.setdefault(cls.id, cls)
    return sorted(seen.values(), key=lambda c: order[c.phase])


def check_ids() -> list[str]:
    return [c.id for c in all_checks()]
