"""The ``reported_to`` element (docs/formats/libreport.md §2): parse, format, append, find.

One record per line::

    <Label>: [TIME=<local ISO date>] [URL=<url>] [BTHASH=<hash>] [WORKFLOW=<name>] [MSG=<text>]

Pure functions over text; :meth:`reporter.dumpdir.DumpDir.add_reported_to` does the I/O.
"""

from __future__ import annotations

from reporter.elements import iso_date, parse_iso_date

# libreport splits tokens with C isspace() in the C locale: ASCII whitespace only.
_SPACE = frozenset(" \t\n\v\f\r")


class ReportResult:
    """One ``reported_to`` record. ``time`` is unix seconds (written as local ISO date).

    Immutable, compared and hashed by value. A plain class, not a dataclass: importing
    :mod:`dataclasses` (it loads :mod:`inspect`) would cost ``crashkit list`` about 7 ms.
    """

    __slots__ = ("label", "time", "url", "bthash", "workflow", "msg")
    label: str
    time: int | None
    url: str | None
    bthash: str | None
    workflow: str | None
    msg: str | None

    def __init__(self, label: str, time: int | None = None, url: str | None = None,
                 bthash: str | None = None, workflow: str | None = None, msg: str | None = None) -> None:
        for name, value in zip(self.__slots__, (label, time, url, bthash, workflow, msg), strict=True):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"ReportResult is immutable: cannot set {name!r}")

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is ReportResult and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"ReportResult({fields})"

    def format(self) -> str:
        """The record as a line (no newline), fields in libreport's order."""
        return format_result(self)


def parse_line(line: str) -> ReportResult | None:
    """Parse one record; ``None`` for a line without ``:`` or with an empty label.

    Tokens after the label are whitespace-separated ``KEY=value``; unknown keys are
    ignored, a later key overrides an earlier one, an invalid ``TIME`` is ignored, and
    ``MSG=`` takes the rest of the line.
    """
    line = line.rstrip("\n")
    label, colon, rest = line.partition(":")
    if not colon or not label or "\n" in label:
        return None
    fields: dict[str, str | int | None] = {}
    pos = 0
    n = len(rest)
    while pos < n:
        while pos < n and rest[pos] in _SPACE:
            pos += 1
        if pos >= n:
            break
        if rest.startswith("MSG=", pos):
            fields["msg"] = rest[pos + 4 :]
            break
        end = pos
        while end < n and rest[end] not in _SPACE:
            end += 1
        token = rest[pos:end]
        pos = end
        if token.startswith("URL="):
            fields["url"] = token[4:]
        elif token.startswith("BTHASH="):
            fields["bthash"] = token[7:]
        elif token.startswith("WORKFLOW="):
            fields["workflow"] = token[9:]
        elif token.startswith("TIME="):
            when = parse_iso_date(token[5:])
            if when is not None:
                fields["time"] = when
    return ReportResult(label=label, **fields)  # type: ignore[arg-type]


def parse(text: str) -> list[ReportResult]:
    """All records of a ``reported_to`` text, in file order (malformed lines skipped)."""
    results = []
    for line in text.split("\n"):
        result = parse_line(line)
        if result is not None:
            results.append(result)
    return results


def find(text: str, label: str) -> ReportResult | None:
    """The **last** record with *label* (libreport ``find_in_reported_to``)."""
    found = None
    for result in parse(text):
        if result.label == label:
            found = result
    return found


def format_result(result: ReportResult) -> str:
    """Format *result* as one line: ``Label:`` then `` TIME= URL= BTHASH= WORKFLOW= MSG=``.

    Raises :class:`ValueError` for values that could not be parsed back (a label with
    ``:`` or a newline, whitespace inside URL/BTHASH/WORKFLOW, a newline in MSG).
    """
    if not result.label or ":" in result.label or "\n" in result.label:
        raise ValueError(f"invalid reported_to label {result.label!r}")
    parts = [result.label + ":"]
    if result.time is not None:
        parts.append("TIME=" + iso_date(result.time))
    for key, value in (("URL=", result.url), ("BTHASH=", result.bthash), ("WORKFLOW=", result.workflow)):
        if value is not None:
            if any(c in _SPACE for c in value):
                raise ValueError(f"reported_to {key[:-1]} must not contain whitespace: {value!r}")
            parts.append(key + value)
    if result.msg is not None:
        if "\n" in result.msg:
            raise ValueError("reported_to MSG must not contain a newline")
        parts.append("MSG=" + result.msg)
    return " ".join(parts)


def append_line(text: str, line: str) -> str | None:
    """libreport's append rule: the new ``reported_to`` text, or ``None`` if *line* is
    already present as a full line. Prior content is made to end with ``\\n``."""
    if "\n" in line:
        raise ValueError("a reported_to record must be a single line")
    for existing in text.split("\n"):
        if existing == line:
            return None
    sep = "\n" if text and not text.endswith("\n") else ""
    return f"{text}{sep}{line}\n"
