"""Text that is safe to print on a terminal: every non-printable character escaped.

Element content, element names and directory names come from the crashing side. A C0
control (ESC), a C1 control (U+009B is CSI, a whole escape sequence introducer in one
character), DEL, a bidirectional override (U+202E) or a zero-width character printed
verbatim can rewrite the screen or disguise text. :func:`escape` writes each of them as a
Python-style escape: ``\\xNN`` up to U+00FF, ``\\uNNNN``, ``\\UNNNNNNNN``; ``\\t``, ``\\n``
and ``\\r`` by name. A byte of an undecodable file name (a ``surrogateescape`` U+DC80..U+DCFF)
is shown as the ``\\xNN`` of that byte. Backslashes themselves are left alone, so an escape
in the output may also be literal text: the JSON output is the exact form.
"""

from __future__ import annotations

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def escape(text: str, keep: str = "") -> str:
    """*text* with every character that is not printable (``str.isprintable``), other than
    those in *keep*, replaced by an escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else _escape_char(c) for c in text)


def _escape_char(c: str) -> str:
    named = _NAMED.get(c)
    if named is not None:
        return named
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the raw byte of a file name
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
