"""Opening files named by a core without trusting them."""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO


def open_regular(path: str) -> BinaryIO:
    """Open ``path`` for reading only if it is a regular file.

    Paths come from the core (NT_FILE) and may lie under a container's root: a FIFO or a
    device planted there must not block us or trigger a driver, so the open does not wait
    (O_NONBLOCK) and anything that is not a regular file is refused after ``fstat``.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
