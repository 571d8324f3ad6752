"""The state plugin base class and the context every plugin collects through.

A plugin is one small class (STYLE.md, guideline 5): class attributes say what it needs
(``commands`` on PATH, ``sockets``, ``files`` under the root) and :meth:`StatePlugin.collect`
returns its instances. The framework (:mod:`collectors.state.collect`) decides ``absent``
from the needs, runs the plugins in parallel and turns :class:`StateError` into ``error``.
Everything a plugin reads or runs goes through :class:`Context`: the injectable root, the one
command runner, the shared ``/proc`` scan and the cgroup reader.
"""

from __future__ import annotations

import abc
import os
import stat
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from collectors import runner
from collectors.errors import StateError
from collectors.state.cgroups import CgroupReader
from collectors.state.hostfs import HostFS
from collectors.state.model import Instance, Resources
from collectors.state.procs import ProcTable

DEFAULT_LIBVIRT_URI = "qemu:///system"
DEFAULT_TIMEOUT = 10.0


class NotPresent(Exception):  # noqa: N818 - a verdict, not an error
    """Raised by a plugin that finds its technology not in use after all (e.g. a ``docker``
    client whose daemon is not running): the result is ``absent``."""


@dataclass(frozen=True)
class Options:
    """How ``crashkit state`` looks (command options and their defaults)."""

    root: str = "/"
    libvirt_uri: str = DEFAULT_LIBVIRT_URI
    timeout: float = DEFAULT_TIMEOUT          # per command
    path: str | None = None                   # search PATH for tools (default: ours, cleaned)
    docker_host: str | None = None            # unix:///path (default: $DOCKER_HOST, then the usual)
    podman_host: str | None = None            # unix:///path (default: $CONTAINER_HOST, then the usual)
    lxc_paths: tuple[str, ...] = ("/var/lib/lxc",)
    env: dict[str, str] = field(default_factory=dict)


Runner = Callable[..., runner.CommandResult]


class Context:
    """What plugins read and run through (thread-safe: plugins share one)."""

    def __init__(self, options: Options, run: Runner = runner.run) -> None:
        self.options = options
        self.fs = HostFS(options.root)
        self._run = run
        self._lock = threading.Lock()
        self._procs: ProcTable | None = None
        self._cgroups: CgroupReader | None = None

    @property
    def live(self) -> bool:
        return self.fs.live

    def run(self, argv: Sequence[str], timeout: float | None = None) -> runner.CommandResult:
        """Run a command through the one runner (only meaningful on the live host)."""
        return self._run(list(argv), timeout=timeout or self.options.timeout,
                         path=self.options.path, env=self.options.env or None)

    def has_command(self, tool: str) -> bool:
        return self.live and runner.which(tool, self.options.path) is not None

    def has_socket(self, path: str) -> bool:
        try:
            return self.live and stat.S_ISSOCK(os.stat(path).st_mode)
        except OSError:
            return False

    @property
    def procs(self) -> ProcTable:
        with self._lock:
            if self._procs is None:
                self._procs = ProcTable(self.fs)
                self._procs.all()
            return self._procs

    @property
    def cgroups(self) -> CgroupReader:
        with self._lock:
            if self._cgroups is None:
                self._cgroups = CgroupReader(self.fs)
            return self._cgroups

    def resources_of(self, pid: int | None) -> Resources:
        """Cgroup limits/usage of a running instance's init (empty when not running)."""
        return self.cgroups.for_pid(pid) if pid else Resources()


class StatePlugin(abc.ABC):
    """One technology. Subclasses set the class attributes and implement :meth:`collect`.

    ``commands``: tools that show the technology is installed (searched on PATH, live host
    only); ``sockets``: daemon sockets (live host only); ``files``: host-absolute globs under
    the root that show it is in use. The plugin is ``absent`` when none of them is there.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    commands: ClassVar[tuple[str, ...]] = ()
    sockets: ClassVar[tuple[str, ...]] = ()
    files: ClassVar[tuple[str, ...]] = ()

    def available(self, ctx: Context) -> bool:
        """Whether anything of the technology is here (override for dynamic needs)."""
        return (any(ctx.has_command(c) for c in self.commands)
                or any(ctx.has_socket(s) for s in self.sockets)
                or any(ctx.fs.glob(f) for f in self.files))

    @abc.abstractmethod
    def collect(self, ctx: Context) -> list[Instance]:
        """Every instance of the technology; raise :class:`StateError` with a one-line
        reason when the source fails, :class:`NotPresent` when it turns out not in use."""


__all__ = ["Context", "NotPresent", "Options", "StateError", "StatePlugin"]
