"""Sentry's identifiers of an ELF image (docs/formats/sentry.md).

``code_id`` is the GNU build-id in hex. ``debug_id`` is the build-id's first 16 bytes
(zero-padded when shorter) read as a little-endian GUID: bytes 0-3, 4-5 and 6-7 reversed,
formatted as a UUID; the Breakpad form is that UUID in upper case without dashes plus an
appendix ``0``. (Two build-ids that differ only after byte 16 therefore share a debug_id.)
"""

from __future__ import annotations

import uuid


def debug_id(build_id: str, little_endian: bool = True) -> str:
    """The ``debug_id`` of an ELF file with GNU build-id *build_id* (hex)."""
    raw = bytes.fromhex(build_id)[:16].ljust(16, b"\0")
    if little_endian:
        raw = raw[3::-1] + raw[5:3:-1] + raw[7:5:-1] + raw[8:]
    return str(uuid.UUID(bytes=raw))


def breakpad_id(build_id: str, little_endian: bool = True) -> str:
    """The Breakpad module id (``debug_id`` upper case, no dashes, appendix 0)."""
    return debug_id(build_id, little_endian).replace("-", "").upper() + "0"
