"""Host lifecycle checks (``crashkit check``): boot, crash readiness, runtime, containers and
VMs, reporting and shutdown.

Each check is one small :class:`~collectors.checks.base.Check` subclass in a module of
:mod:`collectors.checks.plugins` (found by :mod:`collectors.checks.registry`); it reads the
host only through a :class:`~collectors.checks.host.Host`, whose root, command runner and
journal can be pointed at recorded data. The pure parsers of ``/proc``, ``/sys``, journal
and tool output live in :mod:`collectors.checks.parsers`.
"""
