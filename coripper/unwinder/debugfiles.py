"""Where a module's separate debug file is, as gdb looks for it: by build-id under
``/usr/lib/debug/.build-id``, else by the ``.gnu_debuglink`` name and CRC-32.

Every candidate is a path below the process's root, opened through the unwind's
:class:`~coripper.unwinder.rootfs.FileCache` (so a link in the tree cannot lead out of it, and nothing
but a regular file is read); the file found is returned open.
"""

from __future__ import annotations

import os
import struct
import zlib

from coripper.unwinder.rootfs import FileCache, RegularFile

_CACHE_LIMIT = 512


def debug_file_for(build_id: str | None, files: FileCache) -> RegularFile | None:
    """The separate debug file of ``build_id`` in the root's /usr/lib/debug/.build-id."""
    if not build_id or len(build_id) < 3:
        return None
    return files.get(f"/usr/lib/debug/.build-id/{build_id[:2]}/{build_id[2:]}.debug")


_CRC_CACHE: dict[object, int] = {}


def _gnu_debuglink(f: RegularFile) -> tuple[str, int] | None:
    """(file name, CRC-32) from an ELF file's ``.gnu_debuglink`` section: the name, NUL, padding
    to 4 bytes, the CRC in the file's byte order (little-endian here)."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    try:
        with f.stream() as s:
            sec = ELFFile(s).get_section_by_name(".gnu_debuglink")
            data = sec.data() if sec is not None and sec["sh_type"] != "SHT_NOBITS" else b""
    except (ELFError, OSError, ValueError, KeyError, AssertionError, struct.error):
        return None
    nul = data.find(b"\0")
    crc_at = (nul + 4) & ~3
    if nul <= 0 or crc_at + 4 > len(data):
        return None
    name = data[:nul].decode("utf-8", "surrogateescape")
    if "/" in name or name in (".", ".."):
        return None                 # a bare file name only: it must not lead elsewhere
    return name, int.from_bytes(data[crc_at:crc_at + 4], "little")


def _file_crc32(f: RegularFile) -> int | None:
    """CRC-32 of a whole file (zlib's, which is gdb's ``gnu_debuglink_crc32``), cached."""
    if f.identity not in _CRC_CACHE:
        crc, offset = 0, 0
        try:
            while chunk := f.pread(offset, 1 << 20):
                crc = zlib.crc32(chunk, crc)
                offset += len(chunk)
        except (OSError, ValueError):
            return None
        if len(_CRC_CACHE) >= _CACHE_LIMIT:
            _CRC_CACHE.clear()
        _CRC_CACHE[f.identity] = crc
    return _CRC_CACHE[f.identity]


def debuglink_file_for(module_file: RegularFile, mapped_path: str,
                       files: FileCache) -> RegularFile | None:
    """The separate debug file named by ``module_file``'s ``.gnu_debuglink``, where gdb looks for
    it: the object's directory, its ``.debug/`` subdirectory, then ``/usr/lib/debug`` + the
    directory; for the directory the process mapped it from and for the one it resolves to
    inside the root (``/usr/lib/...`` for ``/lib/...``). The file's CRC-32 must be the one in
    the link (gdb refuses a mismatch too)."""
    link = _gnu_debuglink(module_file)
    if link is None:
        return None
    name, crc = link
    dirs = [os.path.dirname(mapped_path)]
    try:
        real = os.path.dirname(files.root.realpath(mapped_path))
    except OSError:
        real = dirs[0]
    if real != dirs[0]:
        dirs.append(real)
    for d in dirs:
        for cand in (f"{d}/{name}", f"{d}/.debug/{name}", f"/usr/lib/debug{d}/{name}"):
            f = files.get(cand)
            if f is None or f.identity[:2] == module_file.identity[:2]:
                continue
            if _file_crc32(f) == crc:
                return f
    return None


def find_debug_file(build_id: str | None, module_file: RegularFile | None, mapped_path: str,
                    files: FileCache) -> RegularFile | None:
    """A module's separate debug file, in gdb's order: by build-id, then by debuglink."""
    found = debug_file_for(build_id, files)
    if found is None and module_file is not None:
        found = debuglink_file_for(module_file, mapped_path, files)
    return found
