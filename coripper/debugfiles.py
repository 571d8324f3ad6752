"""Where a module's separate debug file is, as gdb looks for it: by build-id under
``/usr/lib/debug/.build-id``, else by the ``.gnu_debuglink`` name and CRC-32."""

from __future__ import annotations

import os
import struct
import zlib

from coripper.regularfile import open_regular

_CACHE_LIMIT = 512


def under_root(rootdir: str, path: str) -> str:
    """``path`` as seen from inside ``rootdir`` (a container's or a sysroot's root)."""
    return os.path.join(rootdir, path.lstrip("/")) if rootdir not in ("", "/") else path


def debug_file_for(build_id: str | None, rootdir: str) -> str | None:
    """The separate debug file of ``build_id`` under ``rootdir``'s /usr/lib/debug/.build-id."""
    if not build_id or len(build_id) < 3:
        return None
    cand = under_root(rootdir, f"/usr/lib/debug/.build-id/{build_id[:2]}/{build_id[2:]}.debug")
    return cand if os.path.isfile(cand) else None


_CRC_CACHE: dict[tuple[str, int, int, int], int] = {}


def _gnu_debuglink(path: str) -> tuple[str, int] | None:
    """(file name, CRC-32) from an ELF file's ``.gnu_debuglink`` section: the name, NUL, padding
    to 4 bytes, the CRC in the file's byte order (little-endian here)."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    try:
        with open_regular(path) as f:
            sec = ELFFile(f).get_section_by_name(".gnu_debuglink")
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


def _file_crc32(path: str) -> int | None:
    """CRC-32 of a whole file (zlib's, which is gdb's ``gnu_debuglink_crc32``), cached."""
    try:
        with open_regular(path) as f:
            st = os.fstat(f.fileno())
            key = (path, st.st_dev, st.st_ino, st.st_mtime_ns)
            if key not in _CRC_CACHE:
                crc = 0
                while chunk := f.read(1 << 20):
                    crc = zlib.crc32(chunk, crc)
                if len(_CRC_CACHE) >= _CACHE_LIMIT:
                    _CRC_CACHE.clear()
                _CRC_CACHE[key] = crc
            return _CRC_CACHE[key]
    except OSError:
        return None


def debuglink_file_for(disk_path: str, mapped_path: str, rootdir: str) -> str | None:
    """The separate debug file named by ``disk_path``'s ``.gnu_debuglink``, where gdb looks for
    it: the object's directory, its ``.debug/`` subdirectory, then ``/usr/lib/debug`` + the
    directory (all under ``rootdir``; for ``/`` the directory of the resolved path too). The
    file's CRC-32 must be the one in the link (gdb refuses a mismatch too)."""
    link = _gnu_debuglink(disk_path)
    if link is None:
        return None
    name, crc = link
    dirs = [os.path.dirname(mapped_path)]
    if rootdir in ("", "/"):
        real = os.path.dirname(os.path.realpath(mapped_path))
        if real != dirs[0]:
            dirs.append(real)
    for d in dirs:
        for cand in (f"{d}/{name}", f"{d}/.debug/{name}", f"/usr/lib/debug{d}/{name}"):
            full = under_root(rootdir, cand)
            try:
                if not os.path.isfile(full) or os.path.samefile(full, disk_path):
                    continue
            except OSError:
                continue
            if _file_crc32(full) == crc:
                return full
    return None


def find_debug_file(build_id: str | None, disk_path: str | None, mapped_path: str,
                    rootdir: str) -> str | None:
    """A module's separate debug file, in gdb's order: by build-id, then by debuglink."""
    found = debug_file_for(build_id, rootdir)
    if found is None and disk_path is not None:
        found = debuglink_file_for(disk_path, mapped_path, rootdir)
    return found
