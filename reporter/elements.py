"""Pure rules of libreport problem-directory elements (docs/formats/libreport.md §1.2, §1.5).

Element names, the ``dd_load_text`` text rules, numeric elements, libreport's "ISO date",
the text-vs-binary probe and the ``cmdline``/``environ`` quoting. Bytes and strings in,
values out; nothing here touches the filesystem. Standard library only (the crash hook
imports this through :mod:`reporter.dumpdir`).
"""

from __future__ import annotations

import time as _time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

# Names that can never be elements: "." and ".." are not files, ".libreport" holds the
# metadata and ".lock" is the lock symlink (writing it would break the lock protocol).
RESERVED_NAMES = frozenset({".", "..", ".libreport", ".lock"})
MAX_NAME_BYTES = 64

# parse_time_file_at() reads into a char[sizeof(time_t)*3 + 1] buffer and rejects a file
# that fills it, so 25 bytes or more is "too long to be a valid unix time stamp".
MAX_NUMBER_FILE_BYTES = 24
MAX_TIME_T = (1 << 63) - 1
# A directory's ``type`` is judged non-empty on this many leading bytes (they are never long).
TYPE_PROBE_SIZE = 4096

# problem_data's text probe: at most 8 MiB of text, decide on the first 4 KiB.
MAX_TEXT_SIZE = 8 * 1024 * 1024
TEXT_PROBE_SIZE = 4096
TEXT_BAD_RATIO = 10

ISO_DATE_FORMAT = "%Y-%m-%d-%H:%M:%S"

_C_WHITESPACE = frozenset(b" \t\n\v\f\r")


def is_valid_element_name(name: str) -> bool:
    """True when *name* is a valid element file name (libreport ``str_is_correct_filename``).

    1..64 bytes (UTF-8), no ``/``, no byte below 0x20 nor 0x7f, and not ``.``, ``..``,
    ``.libreport`` or ``.lock``.
    """
    if name in RESERVED_NAMES:
        return False
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    if not 1 <= len(raw) <= MAX_NAME_BYTES:
        return False
    return not any(b < 0x20 or b == 0x7F or b == 0x2F for b in raw)


def load_text(data: bytes) -> str:
    """Decode element bytes with libreport's ``dd_load_text`` rules.

    NUL becomes a space; other bytes below 0x20 that are not C whitespace are dropped
    (0x7f and bytes >= 0x80 are kept, as libreport keeps every byte >= ``' '``). If the
    content has exactly one ``\\n`` and it is the last byte, it is stripped; if it has at
    least one ``\\n`` and the last line is unterminated, a ``\\n`` is appended. Invalid
    UTF-8 is replaced with U+FFFD (use the raw bytes for exact content).
    """
    if data.isascii() and not any(b < 0x20 and b not in _C_WHITESPACE for b in data):
        kept = data  # fast path: the usual element is plain text
    else:
        out = bytearray()
        for b in data:
            if b == 0:
                out.append(0x20)
            elif b >= 0x20 or b in _C_WHITESPACE:
                out.append(b)
        kept = bytes(out)
    newlines = kept.count(b"\n")
    if newlines:
        if kept.endswith(b"\n"):
            if newlines == 1:
                kept = kept[:-1]
        else:
            kept += b"\n"
    return kept.decode("utf-8", "replace")


def parse_number(data: bytes | str | None) -> int | None:
    """Parse a numeric element (``time``, ``count``, ``uid``...): unsigned decimal, at most
    one trailing ``\\n``; ``None`` when missing, overlong, negative or garbage.
    """
    if data is None:
        return None
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    if len(data) > MAX_NUMBER_FILE_BYTES:
        return None
    if data.endswith(b"\n"):
        data = data[:-1]
    if not data or not data.isdigit():  # bytes.isdigit() is ASCII-only
        return None
    value = int(data)
    return value if value < MAX_TIME_T else None


def format_number(value: int) -> bytes:
    """Encode a numeric element as libreport writes it: decimal, no trailing newline."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"numeric element must be a non-negative integer, not {value!r}")
    return str(value).encode("ascii")


def iso_date(when: float) -> str:
    """libreport's "ISO date" of *when*: local time ``%Y-%m-%d-%H:%M:%S``.

    The year is always 4 digits (glibc's ``%Y`` writes year 377 as ``377``, which
    :func:`parse_iso_date` would then refuse), so every date written reads back.
    """
    tm = _time.localtime(int(when))
    return f"{tm.tm_year:04d}" + _time.strftime(ISO_DATE_FORMAT[2:], tm)


def parse_iso_date(text: str) -> int | None:
    """Parse libreport's local-time ISO date back to unix seconds (``None`` if invalid)."""
    if len(text) != 19:  # strptime would accept unpadded fields; libreport's writer never makes them
        return None
    try:
        parsed = _time.strptime(text, ISO_DATE_FORMAT)
    except ValueError:
        return None
    try:
        return int(_time.mktime(parsed))
    except (OverflowError, ValueError):
        return None


def is_text(data: bytes, total_size: int | None = None) -> bool:
    """problem_data's text-vs-binary probe over an element's leading bytes.

    Larger than 8 MiB ⇒ binary ("bigtxt"). On the first 4 KiB: any control byte other
    than whitespace ⇒ binary; otherwise text when ``(len+10)/(bad+1) >= 10`` where bad
    counts 0x7f and bytes of broken UTF-8 sequences.
    """
    size = len(data) if total_size is None else total_size
    if size > MAX_TEXT_SIZE:
        return False
    probe = data[:TEXT_PROBE_SIZE]
    if any(b < 0x20 and b not in _C_WHITESPACE for b in probe):
        return False
    bad = 0
    i = 0
    n = len(probe)
    while i < n:
        b = probe[i]
        if b < 0x80:
            if b == 0x7F:
                bad += 1
            i += 1
            continue
        length = _utf8_sequence_length(probe, i)
        if length == 0:
            bad += 1
            i += 1
        else:
            i += length
    return (n + TEXT_BAD_RATIO) // (bad + 1) >= TEXT_BAD_RATIO


def _utf8_sequence_length(data: bytes, i: int) -> int:
    """Length of the valid UTF-8 sequence starting at *data[i]*, 0 if broken.

    A sequence cut by the end of the probe window counts as valid (it was cut by us).
    """
    b = data[i]
    if 0xC2 <= b <= 0xDF:
        need = 1
    elif 0xE0 <= b <= 0xEF:
        need = 2
    elif 0xF0 <= b <= 0xF4:
        need = 3
    else:
        return 0
    chunk = data[i : i + need + 1]
    if len(chunk) < need + 1:
        return len(chunk) if all(0x80 <= c <= 0xBF for c in chunk[1:]) else 0
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        return 0
    return need + 1


_ESCAPES = {
    0x0D: b"\\r",
    0x0A: b"\\n",
    0x09: b"\\t",
    0x5C: b"\\\\",
    0x27: b"\\'",
    0x22: b'\\"',
}


def quote_arg(arg: bytes) -> bytes:
    """Quote one argv/environ string as libreport's ``get_cmdline``/``get_environ`` do.

    An argument containing a space, a quote, a backslash or a non-printable byte is
    wrapped in single quotes with ``\\' \\" \\\\ \\r \\n \\t`` and ``\\xNN`` escapes; any
    other argument is written verbatim.
    """
    if not any(b <= 0x20 or b >= 0x7F or b in (0x22, 0x27, 0x5C) for b in arg):
        return arg
    out = bytearray(b"'")
    for b in arg:
        esc = _ESCAPES.get(b)
        if esc is not None:
            out += esc
        elif b < 0x20 or b >= 0x7F:
            out += b"\\x%02x" % b
        else:
            out.append(b)
    out += b"'"
    return bytes(out)


def format_cmdline(raw: bytes) -> bytes:
    """``/proc/PID/cmdline`` (NUL-separated argv) to the ``cmdline`` element: quoted args joined by spaces."""
    return b" ".join(quote_arg(a) for a in _split_nul(raw))


def format_environ(raw: bytes) -> bytes:
    """``/proc/PID/environ`` to the ``environ`` element: one quoted ``VAR=value`` per line, each ending in ``\\n``."""
    return b"".join(quote_arg(a) + b"\n" for a in _split_nul(raw))


def format_args(args: Iterable[bytes], separator: bytes = b" ") -> bytes:
    """Quote and join already split strings (e.g. a journal ``COREDUMP_CMDLINE`` list)."""
    return separator.join(quote_arg(a) for a in args)


def _split_nul(raw: bytes) -> list[bytes]:
    parts = raw.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()  # the kernel terminates every string with NUL
    return parts
