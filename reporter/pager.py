"""Long output on a terminal through a pager, with systemd's conventions.

``$SYSTEMD_PAGER``, else ``$PAGER``, else ``less``, else ``more``; an empty value or ``cat``
means no pager. ``less`` gets ``LESS=$SYSTEMD_LESS`` (default ``FRSXMK``: quit when the
output fits one screen, raw colour sequences, chop long lines) and ``LESSCHARSET=utf-8``
in a UTF-8 locale. Only when standard output is a terminal, and never with ``--no-pager``.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_LESS = "FRSXMK"


def choose(environ: Mapping[str, str]) -> str | None:
    """The pager command line to run through ``sh -c`` (``None``: no pager)."""
    for var in ("SYSTEMD_PAGER", "PAGER"):
        if var in environ:
            value = environ[var].strip()
            return None if value in ("", "cat") else value
    import shutil

    for name in ("less", "more"):
        if shutil.which(name, path=environ.get("PATH", os.defpath)):
            return name
    return None


def pager_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The pager's environment: ours plus systemd's ``LESS`` and ``LESSCHARSET``."""
    env = dict(environ)
    env["LESS"] = environ.get("SYSTEMD_LESS", DEFAULT_LESS)
    locale = environ.get("LC_ALL") or environ.get("LC_CTYPE") or environ.get("LANG") or ""
    if "utf-8" in locale.lower() or "utf8" in locale.lower():
        env.setdefault("LESSCHARSET", "utf-8")
    return env


class Paged:
    """Context manager: inside it, ``sys.stdout`` (fd 1) feeds the pager when *enabled* and
    stdout is a terminal; leaving it waits for the pager to exit."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._proc: object = None
        self._saved = -1

    def __enter__(self) -> Paged:
        if not self.enabled or not sys.stdout.isatty():
            return self
        command = choose(os.environ)
        if command is None:
            return self
        import subprocess

        sys.stdout.flush()
        try:
            proc = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.PIPE,
                                    env=pager_environ(os.environ))
        except OSError:
            return self  # no /bin/sh: write to the terminal
        assert proc.stdin is not None
        self._saved = os.dup(1)
        os.dup2(proc.stdin.fileno(), 1)
        proc.stdin.close()
        self._proc = proc
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is None:
            return
        import subprocess

        try:
            sys.stdout.flush()
        except BrokenPipeError:  # the user quit the pager early: not an error
            pass
        finally:
            os.dup2(self._saved, 1)  # closes our end of the pipe: the pager sees EOF
            os.close(self._saved)
            proc = self._proc
            assert isinstance(proc, subprocess.Popen)
            while True:
                try:
                    proc.wait()
                    break
                except KeyboardInterrupt:  # ^C belongs to the pager (less ignores it)
                    continue


def paged(enabled: bool) -> Paged:
    """A :class:`Paged` context (see there)."""
    return Paged(enabled)

