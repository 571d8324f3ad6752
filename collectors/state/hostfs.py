"""The host's file system as the state plugins see it: every path is taken under one root.

``HostFS("/")`` reads this host; ``HostFS("/mnt/image")`` reads a mounted host image or a
fixture tree the same way (``crashkit state --root DIR``). Paths given to it are the host's
absolute paths (``/etc/vz/conf``); :meth:`HostFS.path` maps them under the root. Reads are
bounded; symlinks inside the tree are followed only within the read call's own semantics
(the tree is the admin's, not a crashing process's).
"""

from __future__ import annotations

import glob
import os
import stat

DEFAULT_LIMIT = 4 << 20
#: Directory walks for disk usage stop after this many entries (reported as incomplete).
MAX_WALK = 20000


class HostFS:
    """Bounded reads under a root directory."""

    def __init__(self, root: str = "/") -> None:
        self.root = os.path.abspath(root) if root else "/"

    @property
    def live(self) -> bool:
        """The root is this running host (commands, sockets and /proc describe it)."""
        return self.root == "/"

    def path(self, host_path: str) -> str:
        """*host_path* (absolute, as on the host) under the root."""
        if self.root == "/":
            return host_path
        return os.path.join(self.root, host_path.lstrip("/"))

    def read(self, host_path: str, limit: int = DEFAULT_LIMIT) -> bytes:
        """At most *limit* bytes of a file (raises OSError)."""
        with open(self.path(host_path), "rb") as f:
            return f.read(limit)

    def read_opt(self, host_path: str, limit: int = DEFAULT_LIMIT) -> bytes | None:
        """:meth:`read`, or ``None`` when the file cannot be read."""
        try:
            return self.read(host_path, limit)
        except OSError:
            return None

    def text(self, host_path: str, limit: int = DEFAULT_LIMIT) -> str | None:
        """A file decoded as UTF-8 (undecodable bytes kept as surrogates), or ``None``."""
        raw = self.read_opt(host_path, limit)
        return None if raw is None else raw.decode("utf-8", "surrogateescape")

    def exists(self, host_path: str) -> bool:
        return os.path.lexists(self.path(host_path))

    def is_dir(self, host_path: str) -> bool:
        return os.path.isdir(self.path(host_path))

    def listdir(self, host_path: str) -> list[str]:
        """Sorted entries of a directory ([] when it cannot be listed)."""
        try:
            return sorted(os.listdir(self.path(host_path)))
        except OSError:
            return []

    def glob(self, pattern: str) -> list[str]:
        """Host paths matching *pattern* (a host-absolute glob), sorted."""
        base = self.path("/")
        found = glob.glob(glob.escape(base.rstrip("/")) + "/" + pattern.lstrip("/")) \
            if self.root != "/" else glob.glob(pattern)
        if self.root == "/":
            return sorted(found)
        return sorted("/" + os.path.relpath(p, self.root) for p in found)

    def readlink(self, host_path: str) -> str | None:
        try:
            return os.readlink(self.path(host_path))
        except OSError:
            return None

    def file_usage(self, host_path: str) -> tuple[int, int] | None:
        """(bytes allocated on disk, apparent size) of one file, or ``None``."""
        try:
            st = os.stat(self.path(host_path))
        except OSError:
            return None
        return st.st_blocks * 512, st.st_size

    def tree_usage(self, host_path: str, max_entries: int = MAX_WALK) -> tuple[int | None, bool]:
        """(bytes allocated by a file or directory tree, complete?) without following
        symlinks or crossing into other file systems; ``(None, False)`` when unreadable."""
        top = self.path(host_path)
        try:
            st = os.lstat(top)
        except OSError:
            return None, False
        if not stat.S_ISDIR(st.st_mode):
            return st.st_blocks * 512, True
        total, seen, stack = st.st_blocks * 512, 0, [top]
        while stack:
            try:
                entries = os.scandir(stack.pop())
            except OSError:
                continue
            with entries:
                for entry in entries:
                    seen += 1
                    if seen > max_entries:
                        return total, False
                    try:
                        est = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += est.st_blocks * 512
                    if stat.S_ISDIR(est.st_mode) and est.st_dev == st.st_dev:
                        stack.append(entry.path)
        return total, True
