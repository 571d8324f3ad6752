"""Which elements a reporter leaves out (docs/formats/libreport.md §1.2, §4.1).

Always: ``.lock`` and ``.libreport`` (never elements), libreport's ``$EXCLUDE_FROM_REPORT``
and ``AlwaysExcludedElements`` of ``/etc/libreport/libreport.conf`` (both split on ``", "``),
plus each reporter's own list (``exclude = [...]`` in its ``[report.NAME]`` section, and
its built-in defaults, e.g. Sentry never sends the full ``coredump``). Names may be
``fnmatch`` globs (``*.log``).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from dataclasses import dataclass

from reporter import libreport_conf

EXCLUDE_ENV = "EXCLUDE_FROM_REPORT"


def libreport_excluded(environ: dict[str, str] | None = None,
                       conf_path: str = libreport_conf.LIBREPORT_CONF) -> list[str]:
    """``$EXCLUDE_FROM_REPORT`` ∪ ``AlwaysExcludedElements``."""
    env = os.environ if environ is None else environ
    names = libreport_conf.split_list(env.get(EXCLUDE_ENV))
    names += libreport_conf.split_list(libreport_conf.read(conf_path).values.get("AlwaysExcludedElements"))
    return names


@dataclass(frozen=True)
class Exclusions:
    """A set of names and globs; :meth:`excludes` answers for one element."""

    patterns: tuple[str, ...] = ()

    @classmethod
    def for_reporter(cls, own: Iterable[str] = (), environ: dict[str, str] | None = None,
                     conf_path: str = libreport_conf.LIBREPORT_CONF) -> Exclusions:
        """libreport's lists plus *own*."""
        return cls(tuple(dict.fromkeys([*libreport_excluded(environ, conf_path), *own])))

    def excludes(self, name: str) -> bool:
        """True when element *name* must not be sent."""
        if name in (".lock", ".libreport"):
            return True
        return any(name == p or fnmatch.fnmatchcase(name, p) for p in self.patterns)
