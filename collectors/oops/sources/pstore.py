"""Source: records the previous kernel left in pstore (``/sys/fs/pstore``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

from collectors.oops.sources.base import LogUnit, Source, one_line
from collectors.oops.sources.logfile import READ_ERRORS
from collectors.oops.sources.pstore_records import (
    PSTORE_NAME,
    PstoreRecord,
    assemble_dmesg,
    read_pstore_record,
)

log = logging.getLogger(__name__)


class PstoreSource(Source):
    """Records the previous kernel left in pstore (``/sys/fs/pstore``): ``dmesg-*`` dumps
    (reassembled from their parts, ``.enc.z`` inflated) and ``console-*`` logs.

    Records stay until someone deletes them (systemd-pstore moves them away), so the
    cursor is the set of content hashes already scanned.

    Records in the kernel's pstore filesystem are written by the kernel alone; records read
    from any other directory (a copy, a test tree) are unauthenticated unless ``trusted``.
    """

    name = "pstore"
    description = "dmesg and console records the previous kernel left in /sys/fs/pstore"
    KERNEL_ROOT = "/sys/fs/pstore"

    def __init__(self, root: str = KERNEL_ROOT, trusted: bool | None = None) -> None:
        self.root = root
        self.trusted = os.path.normpath(root) == self.KERNEL_ROOT if trusted is None else trusted

    def _paths(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except OSError:
            return []
        return sorted(os.path.join(self.root, n) for n in names if PSTORE_NAME.match(n))

    def exists(self) -> bool:
        """True when pstore holds a dmesg or console record."""
        return any(os.path.basename(p).startswith(("dmesg-", "console-")) for p in self._paths())

    def units(self, state: dict[str, Any]) -> Iterator[LogUnit]:
        """One unit per dump event and per console record not seen before."""
        import hashlib

        seen_old = state.get("seen")
        if not isinstance(seen_old, list):
            seen_old = []
        seen = list(seen_old)
        records: list[PstoreRecord] = []
        for path in self._paths():
            try:
                rec = read_pstore_record(path)
            except READ_ERRORS as exc:
                log.warning("pstore: %s: skipped: %s", path, one_line(exc))
                continue
            if rec is not None:
                records.append(rec)
        texts: list[tuple[str, str]] = [(e.origin, e.text) for e in assemble_dmesg(records)]
        texts += [(f"pstore {r.name}", r.text) for r in records if r.type == "console"]
        for origin, text in texts:
            digest = hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()
            if digest in seen_old:
                continue

            def finish(digest: str = digest) -> None:
                if digest not in seen:
                    seen.append(digest)
                state["seen"] = seen[-1000:]

            unauthenticated = None if self.trusted else (
                f"it was read from {self.root}, not from the kernel's pstore filesystem {self.KERNEL_ROOT}")
            yield LogUnit(self.name, origin, iter(text.split("\n")), finish, unauthenticated=unauthenticated)
