"""Strip the log-format prefixes that wrap kernel messages.

A kernel line reaches us through dmesg, syslog (BSD and RFC 5424), journalctl,
``/dev/kmsg`` or a raw console; this module reduces every variant to the text the
kernel printed plus what the prefix told us (log level, printk caller id) and
whether the line is kernel output at all.
"""

from __future__ import annotations

from typing import NamedTuple
from collectors.oops import possessive

# Longest stretch of a single line we look at; the rest of a longer line is ignored
# (a 10 MB line must not cost 10 MB of regex work per pattern).
MAX_LINE_CHARS = 4096


class LogLine(NamedTuple):
    """One input line reduced to kernel text."""

    text: str  # message text, leading blanks kept (stack lines are indented)
    level: int | None  # printk level 0..7 when the prefix carried one
    caller: str | None  # printk caller id ("T1234" / "C0") when present
    kernel: bool  # False for other programs' syslog lines and /dev/kmsg dictionary lines
    stamped: bool = False  # the line carried a "[ seconds]" printk timestamp


# Patterns used with match() start with "^", so that search() with them is linear too;
# quantifiers followed by something they cannot match are possessive (see frames.py).
# /dev/kmsg record: "PRI,SEQ,TS_USEC,FLAGS[,caller=T1];text" (Documentation/ABI/testing/dev-kmsg).
_KMSG = possessive.compile(r"^(\d{1,4}+),\d++,\d++,[^;,]*+((?:,[^;]*+)?);")
_KMSG_CALLER = possessive.compile(r"caller=([TC]\d++)")
# /dev/kmsg dictionary continuation lines: " KEY=value".
_KMSG_DICT = possessive.compile(r"^ [A-Z][A-Z0-9_]*+=")
# RFC 5424: "<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG".
_RFC5424 = possessive.compile(r"^<(\d{1,3}+)>1 \S++ \S++ (\S++) \S++ \S++ (?:-|(?:\[(?:[^\]\\]|\\.)*+\])++) ?(?:\ufeff)?")
# BSD syslog / rsyslog / journalctl (short, short-precise, short-iso, short-full):
# "Nov 24 03:15:20[.123456] host TAG[PID]: ", "2023-11-24T03:15:20.123+00:00 host TAG: ",
# "Mon 2023-11-24 03:15:20 UTC host TAG: ".
_SYSLOG = possessive.compile(
    r"^(?:<(\d{1,3}+)>)?"
    r"(?:[A-Z][a-z]{2} ++\d{1,2}+ \d\d:\d\d:\d\d(?:[.,]\d++)?"
    r"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d++)?(?:Z|[+-]\d\d:?\d\d)?"
    r"|[A-Z][a-z]{2} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d++)? ?[A-Z]{0,5})"
    r" (?:\S++ )?([^\s:\[]++)(?:\[\d++\])?: ?"
)
_LEVEL = possessive.compile(r"^<(\d{1,3}+)>")
# "[  123.456789]" dmesg timestamp, "[Mon Nov 24 03:15:20 2025]" (dmesg -T).
_TIMESTAMP = possessive.compile(r"^(?:\[ *+\d++\.\d++\] ?|\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\] ?)")
# What a console prints before a kernel line: the "printk messages dropped" notice, a
# login prompt the line was printed into.
_CONSOLE_JUNK = possessive.compile(r"^(?:\*\* [0-9]++ printk messages dropped \*\* |(?>.*? login: )(?=[<\[]))")
# printk caller id (CONFIG_PRINTK_CALLER): "[ T1234]" / "[    C0]".
_CALLER = possessive.compile(r"^\[ *+([TC]\d++)\] ?")


def strip_prefix(raw: str) -> LogLine:
    """Reduce one raw log line to the kernel message it carries.

    Accepts dmesg timestamps, printk caller ids, ``<N>`` levels, /dev/kmsg records,
    BSD syslog/journalctl headers and RFC 5424 headers, in any sensible nesting.
    """
    line = raw[:MAX_LINE_CHARS].rstrip("\r\n")
    level: int | None = None
    caller: str | None = None
    if not line:
        return LogLine("", None, None, True)
    first = line[0]
    if first.isdigit():
        m = _KMSG.match(line)
        if m:
            level = int(m.group(1)) & 7
            c = _KMSG_CALLER.search(m.group(2))
            caller = c.group(1) if c else None
            line = line[m.end():]
            return _finish(line, level, caller)
    elif first == " " and _KMSG_DICT.match(line):
        return LogLine(line, None, None, False)
    if first == "<" and line[1:2].isdigit():
        m = _RFC5424.match(line)
        if m:
            level = int(m.group(1)) & 7
            if m.group(2) not in ("kernel", "-"):
                return LogLine(line[m.end():], level, None, False)
            return _finish(line[m.end():], level, None)
    if first.isalpha() or first.isdigit() or first == "<":
        m = _SYSLOG.match(line)
        if m:
            if m.group(1):
                level = int(m.group(1)) & 7
            if m.group(2) != "kernel":
                return LogLine(line[m.end():], level, None, False)
            line = line[m.end():]
    return _finish(line, level, caller)


def _finish(line: str, level: int | None, caller: str | None) -> LogLine:
    """Strip the inner ``<N>``, ``[timestamp]`` and ``[caller]`` parts."""
    if line.startswith("*") or " login: " in line:
        m = _CONSOLE_JUNK.match(line)
        if m:
            line = line[m.end():]
    if line.startswith("<"):
        m = _LEVEL.match(line)
        if m:
            level = int(m.group(1)) & 7
            line = line[m.end():]
    stamped = False
    if line.startswith("["):
        m = _TIMESTAMP.match(line)
        if m:
            stamped = True
            line = line[m.end():]
            if line.startswith("["):
                c = _CALLER.match(line)
                if c:
                    caller = c.group(1)
                    line = line[c.end():]
        else:
            c = _CALLER.match(line)
            if c:
                caller = c.group(1)
                line = line[c.end():]
    return LogLine(line, level, caller, True, stamped)
