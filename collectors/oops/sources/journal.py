"""Source: kernel messages in the systemd journal (``journalctl -k``), boot by boot."""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterator, Sequence
from typing import Any

from collectors.oops.sources.base import LogUnit, Source, decode_line, split_text_lines
from collectors.oops.sources.command import run_command

log = logging.getLogger(__name__)


_BOOT_LINE = re.compile(r"^\s*(-?\d+)\s+([0-9a-f]{32})\b")
_CURSOR_LINE = re.compile(r"^-- cursor: (\S+)\s*$")


# Only entries journald read from the kernel (/dev/kmsg): ``-k`` implies this match, it is
# given again so the filter does not rest on what ``-k`` means to one journalctl version.
# Fields starting with "_" are set by journald alone; ``logger -t kernel`` gives
# _TRANSPORT=syslog (docs/oops-collect.md, "Forged kernel lines").
KERNEL_TRANSPORT = "_TRANSPORT=kernel"


class JournalSource(Source):
    """Kernel messages in the systemd journal, for this and previous boots.

    ``journalctl -k _TRANSPORT=kernel -b <boot id> -o short-precise``, per boot, resuming
    after the cursor stored for that boot (``--after-cursor``, ``--show-cursor``).
    ``extra_args`` select another journal (``--file``/``--directory``) for tests or offline
    analysis; whoever wrote such a file chose its ``_TRANSPORT`` fields, so its reports are
    unauthenticated unless ``trusted``. The host's own journal is trusted.
    """

    name = "journal"
    description = "kernel messages in the systemd journal, per boot (journalctl -k)"

    def __init__(self, journalctl: str = "journalctl", extra_args: Sequence[str] = (),
                 max_boots: int = 10, trusted: bool | None = None) -> None:
        self.journalctl = journalctl
        self.extra_args = tuple(extra_args)
        self.max_boots = max_boots
        self.trusted = not self.extra_args if trusted is None else trusted

    def boots(self) -> list[tuple[int, str]]:
        """``(index, boot id)`` of the boots in the journal, oldest first."""
        if shutil.which(self.journalctl) is None:
            return []
        res = run_command([self.journalctl, *self.extra_args, "--list-boots", "--no-pager"], 60)
        if res.error or res.rc != 0:
            return []
        boots = []
        for line in split_text_lines(res.stdout):
            m = _BOOT_LINE.match(line)
            if m:
                boots.append((int(m.group(1)), m.group(2)))
        return sorted(boots)

    def exists(self) -> bool:
        """True when journalctl works and the journal has at least one boot."""
        return bool(self.boots())

    def units(self, state: dict[str, Any]) -> Iterator[LogUnit]:
        """One unit per boot (the last ``max_boots``), oldest first."""
        cursors = state.get("boots")
        if not isinstance(cursors, dict):
            cursors = {}
        new_cursors: dict[str, str] = {}
        boots = self.boots()[-self.max_boots:]
        for _idx, boot in boots:
            argv = [self.journalctl, *self.extra_args, "-k", KERNEL_TRANSPORT, "-b", boot,
                    "-o", "short-precise", "--no-pager", "--quiet", "--show-cursor"]
            old = cursors.get(boot)
            if isinstance(old, str):
                argv += ["--after-cursor", old]
                new_cursors[boot] = old
            res = run_command(argv)
            if res.error or res.rc != 0:
                err = res.error or decode_line(res.stderr.strip().splitlines()[-1:][0]
                                               if res.stderr.strip() else b"")
                log.warning("journal: boot %s: skipped: %s", boot, err or f"exit {res.rc}")
                continue
            text = list(split_text_lines(res.stdout))
            cursor = None
            while text and (not text[-1] or _CURSOR_LINE.match(text[-1])):
                m = _CURSOR_LINE.match(text.pop())
                if m:
                    cursor = m.group(1)

            def finish(boot: str = boot, cursor: str | None = cursor) -> None:
                if cursor:
                    new_cursors[boot] = cursor
                state["boots"] = new_cursors

            unauthenticated = None if self.trusted else (
                f"it was read from the journal given by {' '.join(self.extra_args)}, whose "
                f"{KERNEL_TRANSPORT} fields are whatever the writer of that journal put there")
            yield LogUnit(self.name, f"journal boot {boot}", iter(text), finish,
                          unauthenticated=unauthenticated)
        state["boots"] = new_cursors
