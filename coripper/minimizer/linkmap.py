"""Synthesized ``r_debug`` and ``link_map`` chain (pure).

A single pass over a core cannot follow the process's own ``link_map`` chain: its nodes and
names may lie before the segment that says where they are (see docs/coripper.md). Instead we
rebuild the chain from ``NT_FILE`` plus each module's ELF header page: ``l_addr`` is the load
bias (mapping start minus the lowest ``PT_LOAD`` vaddr), ``l_ld`` is bias + ``PT_DYNAMIC``'s
vaddr, ``l_name`` the ``NT_FILE`` path. Layouts follow glibc's ``<link.h>`` (public part).
"""

from __future__ import annotations

import struct

from .layout import LINK_MAP_SIZE, R_DEBUG_SIZE

TYPE_CHECKING = False     # typing is not imported at run time (coripper/minimizer/lighttyping.py)
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from .lighttyping import NamedTuple

_LINK_MAP = struct.Struct("<QQQQQ")      # l_addr, l_name, l_ld, l_next, l_prev
_R_DEBUG = struct.Struct("<i4xQQi4xQ")   # r_version, r_map, r_brk, r_state, r_ldbase
RT_CONSISTENT = 0


class LinkEntry(NamedTuple):
    """One node of the synthesized chain (a named tuple: one per module, ~65,530 at most)."""

    name: str        # "" for the main program, as glibc does
    l_addr: int
    l_ld: int


def build_link_map(base: int, entries: list[LinkEntry]) -> bytes:
    """The bytes of a segment at ``base`` holding the chain: nodes first, then NUL-ended names.

    The first node (at ``base``) is what ``r_map`` points to; an empty ``entries`` gives b"".
    """
    if not entries:
        return b""
    names = bytearray()
    name_off = []
    strings_at = base + LINK_MAP_SIZE * len(entries)
    for e in entries:
        name_off.append(strings_at + len(names))
        names += e.name.encode("utf-8", "surrogateescape") + b"\0"
    out = bytearray()
    for i, e in enumerate(entries):
        nxt = base + LINK_MAP_SIZE * (i + 1) if i + 1 < len(entries) else 0
        prev = base + LINK_MAP_SIZE * (i - 1) if i > 0 else 0
        out += _LINK_MAP.pack(e.l_addr, name_off[i], e.l_ld, nxt, prev)
    return bytes(out + names)


def build_r_debug(r_map: int, r_ldbase: int) -> bytes:
    """A version-1 ``struct r_debug`` in state ``RT_CONSISTENT`` pointing at ``r_map``."""
    data = _R_DEBUG.pack(1, r_map, 0, RT_CONSISTENT, r_ldbase)
    assert len(data) == R_DEBUG_SIZE
    return data
