"""Our provenance note: what the minimized core came from and what was kept, as JSON.

Note name ``CRASHKIT``, type :data:`NT_CRASHKIT_PROVENANCE`; the descriptor is UTF-8 JSON
(keys documented in docs/coripper.md). Readers find it with :func:`find_provenance`.
"""

from __future__ import annotations

import json
import struct

from .elfcore import iter_notes

TYPE_CHECKING = False     # typing is not imported at run time (coripper/minimizer/lighttyping.py)
if TYPE_CHECKING:
    from typing import Any

NOTE_NAME = "CRASHKIT"
NT_CRASHKIT_PROVENANCE = 0x50524F56   # "PROV"


def pack_note(name: str, n_type: int, desc: bytes) -> bytes:
    """One ELF note with 4-byte padding."""
    raw = name.encode() + b"\0"
    pad_name = (-len(raw)) % 4
    pad_desc = (-len(desc)) % 4
    return (struct.pack("<III", len(raw), len(desc), n_type) + raw + bytes(pad_name)
            + desc + bytes(pad_desc))


def build_provenance(info: dict[str, Any]) -> bytes:
    """The provenance note (header + JSON descriptor) for ``info``."""
    desc = json.dumps(info, sort_keys=True, separators=(",", ":")).encode()
    return pack_note(NOTE_NAME, NT_CRASHKIT_PROVENANCE, desc)


def find_provenance(note_data: bytes) -> dict[str, Any] | None:
    """The decoded provenance JSON among the notes in ``note_data``, if present."""
    for note in iter_notes(note_data):
        if note.name == NOTE_NAME and note.n_type == NT_CRASHKIT_PROVENANCE:
            try:
                value = json.loads(note.desc)
            except ValueError:          # a damaged or forged note: not ours to trust
                return None
            return value if isinstance(value, dict) else None
    return None
