"""Validate a problem-directory archive in one streaming pass, before anything is unpacked.

The archive is what libreport's ``reporter-upload`` sends (docs/formats/libreport.md §4.1): a
compressed, flat tar with one regular file per element. Nothing is ever extracted to disk:
the pass reads every member through :class:`~reporter.server.decompress.DecompressingReader`
(size and ratio limits while reading), checks each header (regular files only, libreport
element names, member count, declared sizes) before its data is read, keeps small elements
in memory for bucketing and the report page, and finally requires a valid problem directory
(``time`` and ``type``). The stored blob is the archive exactly as received.
"""

from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass, field
from typing import BinaryIO

from reporter import elements as libreport
from reporter.server.decompress import DecompressingReader, sniff
from reporter.server.errors import RejectedInput, TooLarge

HEAD_BYTES = 4096
# Control bytes that are not C whitespace: one of them in the probe makes an element binary.
_BINARY_BYTE = re.compile(rb"[\x00-\x08\x0e-\x1f]")
READ_CHUNK = 256 * 1024
EXTENSIONS = {".tar.gz": "gzip", ".tgz": "gzip", ".tar.xz": "xz", ".txz": "xz",
              ".tar.zst": "zstd", ".tar.zstd": "zstd", ".tar.bz2": "bzip2", ".tbz2": "bzip2",
              ".tar": "tar"}
FORMAT_SUFFIX = {"gzip": "tar.gz", "xz": "tar.xz", "zstd": "tar.zst", "bzip2": "tar.bz2", "tar": "tar"}
_KINDS = ((tarfile.SYMTYPE, "a symbolic link"), (tarfile.LNKTYPE, "a hard link"),
          (tarfile.DIRTYPE, "a directory"), (tarfile.CHRTYPE, "a character device"),
          (tarfile.BLKTYPE, "a block device"), (tarfile.FIFOTYPE, "a FIFO"))


@dataclass(frozen=True)
class ArchiveLimits:
    """Limits applied while reading (see :class:`reporter.server.config.Limits`)."""

    max_members: int = 1000
    max_uncompressed: int = 8 << 30
    max_ratio: int = 100
    ratio_floor: int = 64 << 20
    max_element: int = 8 << 30
    keep_element: int = 1 << 20        # elements up to this size are kept whole ...
    keep_total: int = 4 << 20          # ... while the kept total stays under this


@dataclass(frozen=True)
class Element:
    """One element of the archive: its size, its first bytes and, if small, all of it."""

    name: str
    size: int
    head: bytes
    data: bytes | None

    @property
    def is_text(self) -> bool:
        """libreport's text probe on the element's first 4 KiB."""
        if _BINARY_BYTE.search(self.head[: libreport.TEXT_PROBE_SIZE]):
            return False  # the common binary case (cores), decided at C speed
        return libreport.is_text(self.head, self.size)


@dataclass(frozen=True)
class ProblemArchive:
    """A validated archive: compression, elements in archive order, decompressed size."""

    compression: str
    elements: tuple[Element, ...]
    uncompressed_size: int
    _texts: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)

    def get(self, name: str) -> Element | None:
        """The element called *name*."""
        for e in self.elements:
            if e.name == name:
                return e
        return None

    def text(self, name: str) -> str | None:
        """A kept element's text with libreport's ``dd_load_text`` rules (None if absent/not kept)."""
        if name in self._texts:
            return self._texts[name]
        e = self.get(name)
        value = None if e is None or e.data is None else libreport.load_text(e.data)
        self._texts[name] = value
        return value

    @property
    def archive_format(self) -> str:
        """``tar.gz``, ``tar.xz``, ``tar.zst``, ``tar.bz2`` or ``tar``."""
        return FORMAT_SUFFIX[self.compression]


class _StrictTarInfo(tarfile.TarInfo):
    """Refuses a NUL inside a header name field (tarfile would silently cut the name there)."""

    @classmethod
    def frombuf(cls, buf: bytes, encoding: str, errors: str) -> tarfile.TarInfo:  # type: ignore[override]
        fields = [buf[0:100], buf[157:257]]                      # name, linkname
        if buf[257:263] == b"ustar\x00":
            fields.append(buf[345:500])                          # POSIX prefix
        for raw in fields:
            nul = raw.find(b"\0")
            if nul != -1 and raw[nul:].strip(b"\0"):
                raise RejectedInput("a member name has a NUL byte in it")
        return super().frombuf(buf, encoding, errors)


def format_from_name(name: str) -> str | None:
    """The compression a file name promises (None when the name has no known suffix)."""
    lower = name.lower()
    for suffix, fmt in EXTENSIONS.items():
        if lower.endswith(suffix):
            return fmt
    return None


def _quote(name: str) -> str:
    out = name.encode("unicode_escape", "backslashreplace").decode("ascii")
    return out if len(out) <= 80 else out[:77] + "..."


def check_member(member: tarfile.TarInfo, limits: ArchiveLimits) -> str | None:
    """The element name of *member*, None for a skippable ``./`` entry; refuses everything else."""
    name = member.name
    if member.isdir() and name.rstrip("/") in ("", "."):
        return None
    if name.startswith("./"):
        name = name[2:]
    if member.issparse():
        raise RejectedInput(f"member '{_quote(name)}' is a sparse file; only plain files are accepted")
    for kind, what in _KINDS:
        if member.type == kind:
            raise RejectedInput(f"member '{_quote(name)}' is {what}; only regular files are accepted")
    if not member.isreg():
        raise RejectedInput(f"member '{_quote(name)}' has tar type {member.type!r}; only regular files are accepted")
    if name.startswith("/"):
        raise RejectedInput(f"member '{_quote(name)}' has an absolute path")
    if ".." in name.split("/"):
        raise RejectedInput(f"member '{_quote(name)}' contains a '..' component")
    if "\0" in name:
        raise RejectedInput(f"member '{_quote(name)}' has a NUL byte in its name")
    if "/" in name:
        raise RejectedInput(f"member '{_quote(name)}' is in a subdirectory; problem-directory archives are flat")
    if not libreport.is_valid_element_name(name):
        raise RejectedInput(f"member '{_quote(name)}' is not a valid libreport element name")
    if member.size > limits.max_element:
        raise TooLarge(f"member '{_quote(name)}' is {member.size} bytes, over the {limits.max_element}-byte limit")
    return name


def validate(raw: BinaryIO, limits: ArchiveLimits, *, name: str | None = None) -> ProblemArchive:
    """Read and check the whole archive in *raw*; raise :class:`RejectedInput` with a one-line reason."""
    head = raw.read(512)
    fmt = sniff(head)
    promised = format_from_name(name) if name else None
    if promised is not None and promised != fmt:
        raise RejectedInput(f"'{_quote(name or '')}' is named as {FORMAT_SUFFIX[promised]} but its content is {fmt}")
    raw.seek(0)
    reader = DecompressingReader(raw, fmt, max_output=limits.max_uncompressed, max_ratio=limits.max_ratio,
                                 ratio_floor=limits.ratio_floor)
    try:
        tar = tarfile.open(fileobj=reader, mode="r|", tarinfo=_StrictTarInfo)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise RejectedInput(f"not a tar archive inside the {fmt} stream: {exc}") from None
    found = _read_members(tar, limits)
    while reader.read(READ_CHUNK):  # the tar end marker is not the stream end: check the rest
        pass
    problem = ProblemArchive(fmt, tuple(found), reader.produced)
    _check_problem_dir(problem)
    return problem


def _read_members(tar: tarfile.TarFile, limits: ArchiveLimits) -> list[Element]:
    found: list[Element] = []
    seen: set[str] = set()
    kept = declared = members = 0
    try:
        while True:
            member = tar.next()
            if member is None:
                break
            members += 1
            if members > limits.max_members:
                raise TooLarge(f"the archive has more than {limits.max_members} members")
            name = check_member(member, limits)
            if name is None:
                continue
            if name in seen:
                raise RejectedInput(f"member '{_quote(name)}' appears twice")
            seen.add(name)
            declared += member.size
            if declared > limits.max_uncompressed:
                raise TooLarge(f"the archive's members add up to more than {limits.max_uncompressed} bytes")
            keep = member.size <= limits.keep_element and kept + member.size <= limits.keep_total
            element = _read_element(tar, member, name, keep)
            kept += member.size if keep else 0
            found.append(element)
    except tarfile.TarError as exc:
        raise RejectedInput(f"broken tar archive: {exc}") from None
    except (EOFError, OSError, ValueError) as exc:  # tarfile's own checks leak these on garbage headers
        raise RejectedInput(f"broken tar archive: {exc or 'unexpected end of data'}") from None
    return found


def _read_element(tar: tarfile.TarFile, member: tarfile.TarInfo, name: str, keep: bool) -> Element:
    f = tar.extractfile(member)
    if f is None:  # not reached for regular files
        raise RejectedInput(f"member '{_quote(name)}' has no data")
    parts: list[bytes] = []
    head = b""
    got = 0
    while chunk := f.read(READ_CHUNK):
        if not head:
            head = chunk[:HEAD_BYTES]
        elif len(head) < HEAD_BYTES:
            head += chunk[: HEAD_BYTES - len(head)]
        got += len(chunk)
        if keep:
            parts.append(chunk)
    if got != member.size:
        raise RejectedInput(f"member '{_quote(name)}' is cut short ({got} of {member.size} bytes)")
    return Element(name, member.size, head, b"".join(parts) if keep else None)


def _check_problem_dir(problem: ProblemArchive) -> None:
    """libreport's rule (§1.2): ``time`` is an unsigned decimal unix time and ``type`` is not empty."""
    time_el, type_el = problem.get("time"), problem.get("type")
    if time_el is None or type_el is None:
        nested = next((e.name for e in problem.elements if _looks_archived(e.head)), None)
        if nested is not None:
            raise RejectedInput(f"the archive holds another archive ('{_quote(nested)}') instead of "
                                "problem-directory elements")
        missing = " and ".join(n for n, e in (("time", time_el), ("type", type_el)) if e is None)
        raise RejectedInput(f"not a problem directory: no '{missing}' element")
    if libreport.parse_number(time_el.data) is None:
        raise RejectedInput("not a problem directory: 'time' is not a decimal unix time")
    if not (problem.text("type") or "").strip():
        raise RejectedInput("not a problem directory: 'type' is empty")


def _looks_archived(head: bytes) -> bool:
    try:
        return sniff(head) is not None
    except RejectedInput:
        return False
