"""Opening a host file named by a core without trusting it: a thin wrapper over
:class:`coripper.unwinder.rootfs.RootFS` (the unwinder itself opens through a RootFS and a FileCache)."""

from __future__ import annotations

import os
from typing import BinaryIO

from coripper.unwinder.rootfs import RootFS


def open_regular(path: str) -> BinaryIO:
    """Open the host file ``path`` for reading only if it is a regular file.

    It is resolved below the host's ``/`` without magic links and checked through an
    ``O_PATH`` descriptor before anything opens it for reading, so a FIFO or a device there
    is never opened (no blocking, no driver's ``open``). Raises OSError otherwise.
    """
    with RootFS.host() as root, root.open_file(os.path.abspath(path)) as f:
        return os.fdopen(os.dup(f.fileno()), "rb")
