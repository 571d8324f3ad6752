"""Which crashes a command line names: coredumpctl-style matches and journalctl-style times.

Pure: match words and time expressions in, predicates and seconds out; the rows are the
``crashkit list --json`` objects (:mod:`reporter.listing`). docs/cli.md describes the forms.

A **match** is one command-line word:

* ``1234`` — a PID (``pid``, in the crash's own namespace, or ``global_pid``, the host's);
* a word with a ``/`` — a path: the problem directory itself, else the executable's path;
* any other word — a problem directory's name, else the executable's base name (as
  coredumpctl's COMM);
* ``FIELD=VALUE`` — one field: ``pid``, ``uid``, ``sig``/``signal`` (number or name),
  ``exe``/``executable``, ``comm``, ``dir``/``directory``, ``container``, ``type``;
  coredumpctl's journal names ``COREDUMP_PID``, ``COREDUMP_UID``, ``COREDUMP_SIGNAL``,
  ``COREDUMP_EXE``, ``COREDUMP_COMM`` and ``COREDUMP_CONTAINER`` mean the same.

As in journalctl, matches of the same field are alternatives (OR) and matches of different
fields must all hold (AND): ``crashkit list sleep bash uid=0`` is "sleep or bash, run as root".
"""

from __future__ import annotations

import os
import time as _time

from reporter.errors import ReporterError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing and collections.abc cost milliseconds at start-up
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any


class MatchError(ReporterError, ValueError):
    """A match or time expression that cannot be understood (exit 2)."""


class NoMatchError(ReporterError):
    """A match that names no crash: ``no problem matches ...`` (exit 1)."""

    exit_code = 1


#: Linux signal numbers (x86, arm, aarch64, riscv, ppc, s390: the generic table).
SIGNALS = {1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
           7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2",
           13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT", 17: "SIGCHLD",
           18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP", 21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG",
           24: "SIGXCPU", 25: "SIGXFSZ", 26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO",
           30: "SIGPWR", 31: "SIGSYS"}
_SIGNAL_NUMBERS = {name: number for number, name in SIGNALS.items()}

#: FIELD=VALUE names, and coredumpctl's journal names for the same fields.
FIELDS = {"pid": "pid", "uid": "uid", "sig": "signal", "signal": "signal", "exe": "exe",
          "executable": "exe", "comm": "comm", "dir": "dir", "directory": "dir",
          "container": "container", "type": "type",
          "COREDUMP_PID": "pid", "COREDUMP_UID": "uid", "COREDUMP_SIGNAL": "signal",
          "COREDUMP_EXE": "exe", "COREDUMP_COMM": "comm", "COREDUMP_CONTAINER": "container"}


def signal_name(number: int | None) -> str | None:
    """``SIGSEGV`` for 11; ``SIGRTMIN+N`` for real-time signals; ``None`` for ``None``."""
    if number is None:
        return None
    if number in SIGNALS:
        return SIGNALS[number]
    return f"SIGRTMIN+{number - 34}" if 34 <= number <= 64 else str(number)


def _signal_number(text: str) -> int:
    if text.isdigit():
        return int(text)
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    if name in _SIGNAL_NUMBERS:
        return _SIGNAL_NUMBERS[name]
    if name == "SIGIOT":
        return 6
    raise MatchError(f"sig={text}: not a signal number or name")


class Match:
    """One match word: the field it tests (``pid``, ``path``, ``name`` for the bare forms, or
    a :data:`FIELDS` field) and the value, normalised."""

    __slots__ = ("field", "value", "text")

    def __init__(self, field: str, value: str | int, text: str) -> None:
        self.field = field
        self.value = value
        self.text = text

    def __repr__(self) -> str:
        return f"Match({self.field!r}, {self.value!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Match) and (self.field, self.value) == (other.field, other.value)

    def __hash__(self) -> int:
        return hash((self.field, self.value))


def parse_match(text: str) -> Match:
    """The :class:`Match` of one command-line word (:class:`MatchError` if it is malformed)."""
    if not text:
        raise MatchError("an empty match names nothing")
    key, sep, value = text.partition("=")
    if sep and "/" not in key:
        field = FIELDS.get(key) or FIELDS.get(key.lower())
        if field is None:
            raise MatchError(f"{text}: unknown field '{key}' (one of: pid, uid, sig, exe, comm, "
                             "dir, container, type)")
        if not value:
            raise MatchError(f"{text}: no value after '='")
        if field in ("pid", "uid"):
            if not (value.isascii() and value.isdigit()):
                raise MatchError(f"{text}: not a number")
            return Match(field, int(value), text)
        if field == "signal":
            return Match(field, _signal_number(value), text)
        if field == "type":
            return Match(field, value.lower(), text)
        return Match(field, value, text)
    if text.isascii() and text.isdigit():
        return Match("pid", int(text), text)
    if "/" in text:
        return Match("path", os.path.normpath(text), text)
    return Match("name", text, text)


def _basename(path: str | None) -> str | None:
    return None if path is None else path.rstrip("/").rsplit("/", 1)[-1]


def _test(m: Match, row: Mapping[str, Any]) -> bool:
    field, value = m.field, m.value
    if field == "pid":
        return value in (row.get("pid"), row.get("global_pid"))
    if field == "uid":
        return row.get("uid") == value
    if field == "signal":
        return row.get("signal") == value
    if field == "type":
        return (row.get("type") or "").lower() == value
    exe = row.get("executable")
    if field == "exe":
        return exe == value if "/" in str(value) else _basename(exe) == value
    if field == "comm":
        return _basename(exe) == value
    directory = row.get("directory") or ""
    if field == "dir":
        return (directory == value or _basename(directory) == value
                or os.path.normpath(directory) == os.path.normpath(str(value)))
    if field == "container":
        return value in (row.get("container"), row.get("container_id"), row.get("container_hostname")) \
            or (len(str(value)) >= 4 and str(row.get("container_id") or "").startswith(str(value)))
    if field == "path":
        return os.path.normpath(directory) == value or exe == value
    if field == "name":
        return _basename(directory) == value or _basename(exe) == value
    raise AssertionError(field)  # pragma: no cover - parse_match makes no other field


class Matcher:
    """A set of matches: same field OR, different fields AND; no matches selects everything."""

    __slots__ = ("groups", "words")

    def __init__(self, matches: Iterable[Match]) -> None:
        groups: dict[str, list[Match]] = {}
        words: list[str] = []
        for m in matches:
            groups.setdefault(m.field, []).append(m)
            words.append(m.text)
        self.groups = groups
        self.words = words

    @classmethod
    def parse(cls, words: Sequence[str]) -> Matcher:
        """The matcher of command-line *words*."""
        return cls(parse_match(w) for w in words)

    def __bool__(self) -> bool:
        return bool(self.groups)

    def __call__(self, row: Mapping[str, Any]) -> bool:
        return all(any(_test(m, row) for m in group) for group in self.groups.values())

    def describe(self) -> str:
        """The words, for ``no problem matches ...``."""
        return " ".join(self.words)


# ------------------------------------------------------------------------ time


#: systemd.time(7) time span units, in seconds ("m" is minutes, "M" months).
UNITS = {"usec": 1e-6, "us": 1e-6, "µs": 1e-6, "msec": 1e-3, "ms": 1e-3,
         "seconds": 1, "second": 1, "sec": 1, "s": 1, "": 1,
         "minutes": 60, "minute": 60, "min": 60, "m": 60,
         "hours": 3600, "hour": 3600, "hr": 3600, "h": 3600,
         "days": 86400, "day": 86400, "d": 86400,
         "weeks": 604800, "week": 604800, "w": 604800,
         "months": 2629800, "month": 2629800, "M": 2629800,
         "years": 31557600, "year": 31557600, "y": 31557600}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
             "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_span(text: str) -> float:
    """Seconds of a systemd time span: ``1h``, ``30min``, ``1h 30min``, ``2 days``, ``90``."""
    s = text.strip()
    if not s:
        raise MatchError("an empty time span")
    total = 0.0
    i = 0
    while i < len(s):
        while i < len(s) and s[i] == " ":
            i += 1
        j = i
        while j < len(s) and (s[j].isdigit() or s[j] == "."):
            j += 1
        if j == i or s[i:j].count(".") > 1:
            raise MatchError(f"'{text}': not a time span (e.g. 1h, 30min, 2d)")
        number = float(s[i:j])
        while j < len(s) and s[j] == " ":
            j += 1
        k = j
        while k < len(s) and s[k].isalpha():
            k += 1
        unit = s[j:k]
        factor = UNITS.get(unit, UNITS.get(unit.lower()) if unit != "M" else None)
        if factor is None:
            raise MatchError(f"'{text}': unknown time unit '{unit}'")
        total += number * factor
        i = k
    return total


def _midnight(now: float, days: int) -> float:
    t = _time.localtime(now)
    return _time.mktime((t.tm_year, t.tm_mon, t.tm_mday + days, 0, 0, 0, 0, 0, -1))


def _utc_offset(text: str) -> tuple[str, float | None]:
    """*text* without a trailing ``Z``, `` UTC`` or ``±HH[:]MM``, and that offset in seconds
    (``None``: local time)."""
    if text.endswith(("Z", "z")):
        return text[:-1], 0.0
    if text.upper().endswith((" UTC", " GMT")):
        return text[:-4], 0.0
    for width in (6, 5, 3):  # +02:00, +0200, +02
        if ":" in text[:-width]:  # an offset follows a time of day, never a bare date
            tail = text[-width:]
            digits = tail[1:].replace(":", "", 1)
            if tail[0] in "+-" and digits.isdigit() and len(digits) in (2, 4) and (width != 6 or tail[3] == ":"):
                hours, minutes = int(digits[:2]), int(digits[2:] or 0)
                sign = 1 if tail[0] == "+" else -1
                return text[:-width].rstrip(), sign * (hours * 3600 + minutes * 60)
    return text, None


def _absolute(text: str, now: float) -> float | None:
    """An ISO 8601 / journalctl absolute time, or ``None`` if *text* is not one."""
    s = text.strip()
    first, _, rest = s.partition(" ")
    if first.lower() in _WEEKDAYS and rest:
        s = rest.strip()  # "Fri 2012-11-23 11:12:13": the weekday is informational
    s, offset = _utc_offset(s)
    date, sep, clock = s.replace("T", " ", 1).partition(" ")
    if ":" in date and not sep:  # only a time of day: today
        date, clock = _time.strftime("%Y-%m-%d", _time.localtime(now)), date
    parts = date.split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or len(parts[0]) != 4:
        return None
    year, month, day = (int(p) for p in parts)
    hour = minute = 0
    second = 0.0
    if clock:
        hms = clock.split(":")
        if not 2 <= len(hms) <= 3 or not all(h.replace(".", "", 1).isdigit() for h in hms):
            return None
        hour, minute = int(hms[0]), int(hms[1])
        second = float(hms[2]) if len(hms) == 3 else 0.0
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    whole = int(second)
    if offset is None:
        base = _time.mktime((year, month, day, hour, minute, whole, 0, 0, -1))
    else:
        import calendar

        base = calendar.timegm((year, month, day, hour, minute, whole, 0, 0, 0)) - offset
    return base + (second - whole)


def parse_time(text: str, now: float | None = None) -> float:
    """Unix seconds of a journalctl ``--since``/``--until`` value.

    ``now``, ``today``, ``yesterday``, ``tomorrow`` (local midnight), ``@SECONDS``, a relative
    ``-1h`` / ``+30min`` / ``2 days ago``, or an absolute ``YYYY-MM-DD[ HH:MM[:SS[.frac]]]``
    (``T`` as separator too, a leading weekday, a trailing ``Z``, `` UTC`` or ``±HH:MM``),
    or ``HH:MM[:SS]`` today. :class:`MatchError` otherwise.
    """
    now = _time.time() if now is None else now
    s = text.strip()
    low = s.lower()
    if low == "now":
        return now
    if low in ("today", "yesterday", "tomorrow"):
        return _midnight(now, {"today": 0, "yesterday": -1, "tomorrow": 1}[low])
    if s.startswith("@"):
        try:
            return float(s[1:])
        except ValueError:
            raise MatchError(f"'{text}': not @SECONDS") from None
    if s[:1] in "+-" and s[1:2].isdigit():
        return now + (1 if s[0] == "+" else -1) * parse_span(s[1:])
    if low.endswith(" ago"):
        return now - parse_span(s[:-4])
    if low.endswith(" left"):
        return now + parse_span(s[:-5])
    got = _absolute(s, now)
    if got is None:
        raise MatchError(f"'{text}': not a time (e.g. -1h, yesterday, 2024-05-01 12:00, @1714557600)")
    return got


# ------------------------------------------------------------------------ selection


def when(row: Mapping[str, Any]) -> int:
    """The time a row is listed and filtered by: its last occurrence, else its first."""
    value = row.get("last_occurrence") or row.get("time")
    return int(value) if isinstance(value, int) else 0


def select(rows: Iterable[Mapping[str, Any]], matcher: Matcher | None = None, *,
           since: float | None = None, until: float | None = None,
           reported: bool | None = None, limit: int | None = None,
           reverse: bool = False) -> list[Mapping[str, Any]]:
    """*rows* that pass every filter, oldest first (newest first with *reverse*); with
    *limit*, only the *limit* newest of them. ``reported`` True keeps reported crashes,
    False unreported ones. A row that could not be read (no time) passes the time filters,
    so that an unreadable directory is never hidden by them."""
    kept = []
    for row in rows:
        if matcher and not matcher(row):
            continue
        t = when(row)
        if t and since is not None and t < since:
            continue
        if t and until is not None and t > until:
            continue
        if reported is not None and bool(row.get("reported")) != reported:
            continue
        kept.append(row)
    kept.sort(key=lambda r: (when(r), str(r.get("directory"))))
    if limit is not None:
        kept = kept[-limit:] if limit > 0 else []
    if reverse:
        kept.reverse()
    return kept
