"""DWARF's primitive encodings (LEB128, fixed-size little-endian integers), bounds-checked.

Shared by the CFI decoder (:mod:`coripper.unwinder.cfi`) and the expression machine
(:mod:`coripper.unwinder.dwarfexpr`). A read past the end raises :class:`CfiError`, never
``IndexError`` or ``struct.error``.
"""

from __future__ import annotations

import struct

from coripper.errors import CfiError

MASK64 = (1 << 64) - 1


def uleb(data: bytes, pos: int) -> tuple[int, int]:
    """Decode an unsigned LEB128 at ``pos``; return (value, new position)."""
    result = shift = 0
    while True:
        if pos >= len(data):
            raise CfiError("LEB128 past the end")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, pos
        if shift > 70:
            raise CfiError("LEB128 too long")


def sleb(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a signed LEB128 at ``pos``; return (value, new position)."""
    result, end = uleb(data, pos)
    if data[end - 1] & 0x40:        # sign bit of the last byte (DWARF 5, 7.6)
        result -= 1 << (7 * (end - pos))
    return result, end


def unpack(fmt: str, data: bytes, pos: int) -> tuple[int, int]:
    """Decode one :mod:`struct` value of format ``fmt`` at ``pos``; return (value, new position)."""
    size = struct.calcsize(fmt)
    if pos < 0 or pos + size > len(data):
        raise CfiError("read past the end of the section")
    return struct.unpack_from(fmt, data, pos)[0], pos + size
