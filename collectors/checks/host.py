"""What checks read the host through: one root for ``/proc``, ``/sys``, ``/etc``, ``/var``,
the one command runner, and the host's journal, each replaceable by recorded data.

``Host(HostConfig())`` is this machine. ``HostConfig(root=DIR)`` reads a recorded tree
(``DIR/proc/meminfo`` ...); ``journal_args=("--file", F)`` points ``journalctl`` at a
recorded journal, ``wtmp`` at a recorded ``wtmp``, ``kernel_log`` at a recorded kernel log
of the current boot, ``run`` at a recorded command runner. Host tools (``systemctl``,
``dmesg``) only run on the live root unless a runner is injected. Expensive facts (the
kernel log, the previous boot's journal, the container state) are computed once and shared
by the checks, which run in parallel.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from collectors import runner

T = TypeVar("T")
Runner = Callable[..., runner.CommandResult]
DEFAULT_LIMIT = 4 << 20
COMMAND_TIMEOUT = 20.0


@dataclass(frozen=True)
class HostConfig:
    """Where a check run looks (every default is this host)."""

    root: str = "/"
    state_dir: str | None = None            # the hook's state dir ($CRASHKIT_STATE_DIR, /var/lib/crashkit)
    spool: str | None = None                # default: the installed hook's spool, else $CRASHKIT_SPOOL
    crash_dir: str = "/var/crash"
    journal_args: tuple[str, ...] | None = None   # e.g. ("--file", PATH); None: the host's journal
    wtmp: str | None = None                 # default <root>/var/log/wtmp
    kernel_log: str | None = None           # a recorded kernel log of this boot; None: /dev/kmsg
    run: Runner | None = None               # a recorded runner; None: collectors.runner.run (live only)
    opt_ins: frozenset[str] = frozenset()
    self_test_deadline: float = 60.0
    command_timeout: float = COMMAND_TIMEOUT
    state_json: Mapping[str, Any] | None = None   # `crashkit state --json`, when already collected
    extra: Mapping[str, Any] = field(default_factory=dict)


class Host:
    """Bounded, never-raising reads under the root, commands, and shared facts."""

    def __init__(self, config: HostConfig | None = None) -> None:
        self.config = config or HostConfig()
        self.root = os.path.abspath(self.config.root or "/")
        self._lock = threading.Lock()
        self._memo: dict[str, Any] = {}
        self._key_locks: dict[str, threading.Lock] = {}

    # ------------------------------------------------------------------ files
    @property
    def live(self) -> bool:
        """The root is this running host."""
        return self.root == "/"

    @property
    def runs_host_tools(self) -> bool:
        """Host tools (systemctl, dmesg, virsh...) describe this root: live or recorded runner."""
        return self.live or self.config.run is not None

    def path(self, host_path: str) -> str:
        """*host_path* (absolute, as on the host) under the root."""
        if self.live:
            return host_path
        return os.path.join(self.root, host_path.lstrip("/"))

    def read(self, host_path: str, limit: int = DEFAULT_LIMIT) -> bytes:
        """At most *limit* bytes of a file (raises OSError)."""
        fd = os.open(self.path(host_path), os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            chunks, left = [], limit
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def text(self, host_path: str, limit: int = DEFAULT_LIMIT) -> str | None:
        """A file as text (``None`` when it cannot be read)."""
        try:
            return self.read(host_path, limit).decode("utf-8", "replace")
        except OSError:
            return None

    def text_or_error(self, host_path: str, limit: int = DEFAULT_LIMIT) -> tuple[str | None, str | None]:
        """``(text, None)`` or ``(None, "path: reason")``."""
        try:
            return self.read(host_path, limit).decode("utf-8", "replace"), None
        except OSError as exc:
            return None, f"{host_path}: {exc.strerror or exc}"

    def exists(self, host_path: str) -> bool:
        return os.path.lexists(self.path(host_path))

    def listdir(self, host_path: str) -> list[str]:
        """Sorted entries ([] when the directory cannot be listed)."""
        try:
            return sorted(os.listdir(self.path(host_path)))
        except OSError:
            return []

    def statvfs(self, host_path: str) -> os.statvfs_result | None:
        try:
            return os.statvfs(self.path(host_path))
        except OSError:
            return None

    # --------------------------------------------------------------- commands
    def run(self, argv: Sequence[str], timeout: float | None = None) -> runner.CommandResult:
        """Run a command through the one runner (or the injected recorded one)."""
        fn = self.config.run or runner.run
        return fn(list(argv), timeout=timeout or self.config.command_timeout)

    def journal_available(self) -> bool:
        """The journal can be asked: a recorded one, or this host's when it has boots."""
        if self.config.journal_args is not None:
            return True
        if not self.live:
            return False

        def probe() -> bool:
            res = self.journalctl(["--list-boots"])
            return res.ok and bool(res.stdout.strip())

        return self.memo("journal_available", probe)

    def journalctl(self, args: Sequence[str], timeout: float | None = None) -> runner.CommandResult:
        """``journalctl`` on the configured journal with *args* (``--no-pager --quiet``)."""
        extra = self.config.journal_args or ()
        fn = runner.run if self.config.journal_args is not None else (self.config.run or runner.run)
        return fn(["journalctl", *extra, "--no-pager", "--quiet", *args],
                  timeout=timeout or self.config.command_timeout)

    # ------------------------------------------------------------------ memo
    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """*compute()* once per key, shared between the checks' threads."""
        with self._lock:
            if key in self._memo:
                return self._memo[key]  # type: ignore[no-any-return]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._memo:
                    return self._memo[key]  # type: ignore[no-any-return]
            value = compute()
            with self._lock:
                self._memo[key] = value
            return value

    def opted_in(self, name: str) -> bool:
        return name in self.config.opt_ins
