"""The lines a report's title is read from: the report as syzkaller's parser sees it.

A report's own text ends where ABRT would end it (docs/formats/libreport.md §5.3), but its
title may need more: the stalled task's stack that another CPU prints after "Sending
NMI from CPU", the call trace after a long register dump. A :class:`TitleWindow` collects,
from the report's first headline (:mod:`collectors.oops.headlines`) on, the lines of the
same printk caller (any CPU's after "Sending NMI from CPU"; without caller ids, the lines
that like the headline have a timestamp, or like it have none), without unreliable ``?``
frames. A report that starts with a line of its own ("list_del corruption.",
"refcount_t: underflow") is *anchored* at the headline it takes in later (the
"kernel BUG at" or "WARNING:" that follows). The window closes

- after :data:`WINDOW_LINES` lines, or :data:`WINDOW_INPUT` input lines;
- at a ``Kernel panic`` or circular-locking headline once the report has enough lines of
  its own (what follows is the consequence: panic_on_warn, the lockdep splat the oops
  reporting itself caused);
- when lines carry no caller id, at the next report's headline (on a console without
  caller ids nothing else tells two reports apart).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

WINDOW_LINES = 400
WINDOW_INPUT = 20000
# Headlines that do not start a report of their own when they follow one.
_NOT_A_NEW_REPORT = ("invalid opcode: 0000", "Kernel panic - not syncing", "unregister_netdevice: waiting for",
                     "PANIC: double fault", "Internal error:")
# Informational messages with a stack trace: after one, the lines are someone else's.
_INFO_WITH_STACK = ("vmalloc: allocation failure:", "FAULT_INJECTION: forcing a failure",
                    "FAULT_FLAG_ALLOW_RETRY missing")
_QUESTIONABLE = re.compile(r" \? ")
# Texts that make :meth:`TitleWindow.offer` do more than take a line in or leave it out.
SPECIAL_WORDS = (*_INFO_WITH_STACK, "Disabling lock debugging", "Sending NMI from CPU")


class TitleWindow:
    """The title lines of one report (see the module docstring)."""

    __slots__ = ("key", "start", "lines", "done", "_seen", "_min_lines", "_any_cpu", "_stamped")

    def __init__(self, key: str | None) -> None:
        self.key = key
        self.start = 0
        self.lines: list[str] = []
        self.done = False
        self._seen = 0
        self._min_lines = 22
        self._any_cpu = False
        self._stamped = False

    @property
    def anchored(self) -> bool:
        """Has the window met its report's headline?"""
        return bool(self.lines)

    def anchor(self, lineno: int, headline: str, stamped: bool) -> None:
        """Start the window at the report's headline line (``stamped``: it had a printk
        timestamp; without caller ids, lines with and without one are apart)."""
        self.start = lineno
        self._stamped = stamped
        self.lines = [headline]
        self._seen = 1
        # KMSAN reports have no "Call Trace:" line and fewer lines before a panic
        self._min_lines = 16 if "BUG: KMSAN:" in headline else 22

    def offer(self, lineno: int, text: str, caller: str | None, stamped: bool, headline: bool) -> None:
        """Give the window the next input line (``headline``: it starts a report)."""
        if not self.lines:
            return
        if lineno - self.start > WINDOW_INPUT:
            self.done = True
            return
        if self.key is None and (headline and not any(s in text for s in _NOT_A_NEW_REPORT)
                                 or any(s in text for s in _INFO_WITH_STACK)):
            self.done = True
            return
        if caller != self.key and not (self._any_cpu and caller is not None and caller.startswith("C")):
            return
        if stamped != self._stamped and caller is None:
            return
        if stamped and "<EOI>" not in text and (_QUESTIONABLE.search(text) or text.endswith(" (unreliable)")):
            return
        self._seen += 1
        if "Disabling lock debugging due to kernel taint" in text:
            return
        if "Sending NMI from CPU" in text:
            self._any_cpu = True
        elif self._seen > self._min_lines and ("Kernel panic - not syncing" in text
                                               or "WARNING: possible circular locking dependency detected" in text):
            self.done = True
            return
        self.lines.append(text)
        if len(self.lines) >= WINDOW_LINES:
            self.done = True

    def offer_plain(self, linenos: Sequence[int], texts: Sequence[str], special: bool,
                    questionable: bool = True) -> int | None:
        """:meth:`offer` of each line ``texts[i]`` (line number ``linenos[i]``): lines with a
        printk timestamp, no caller id, no headline (``special``: some may hold a
        :data:`SPECIAL_WORDS` text; ``questionable``: some may hold " ? " or " (unreliable)").
        Returns the line number at which the window closed, None if it is still open."""
        if special or linenos[-1] - self.start > WINDOW_INPUT:
            for lineno, text in zip(linenos, texts, strict=True):
                self.offer(lineno, text, None, True, False)
                if self.done:
                    return lineno
            return None
        if self.key is not None or not self._stamped:
            return None  # another caller's lines, or timestamped ones where the headline had none
        if questionable:
            keep = [i for i, t in enumerate(texts)
                    if "<EOI>" in t or (" ? " not in t and not t.endswith(" (unreliable)"))]
            texts = [texts[i] for i in keep]
            linenos = [linenos[i] for i in keep]
        self._seen += len(texts)
        room = WINDOW_LINES - len(self.lines)
        if len(texts) < room:
            self.lines.extend(texts)
            return None
        self.lines.extend(texts[:room])
        self.done = True
        return linenos[room - 1]
