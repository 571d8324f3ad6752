"""OpenVZ / Virtuozzo: ``vzlist -a -j`` (vzctl src/vzlist.c), ``prlctl list -a -i -j``
(prlctl PrlVm::append_configuration through PrlOutFormatterJSON), ``/proc/vz/veinfo``,
``/proc/user_beancounters``, ``/etc/vz/conf/CTID.conf`` and ploop's ``DiskDescriptor.xml``.

vzlist and prlctl print strings into their JSON without escaping (``printf("\\"%s\\"")``): a
name with a quote makes the whole listing malformed, which is an error of the tool, reported
as such."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from collectors.errors import StateError
from collectors.state.formats.oci import loads

#: vzlist ve_status() strings are already ours; prlctl vmstate2str() ones are mapped.
STATE_MAP = {"running": "running", "stopped": "stopped", "mounted": "mounted",
             "suspended": "suspended", "paused": "paused", "unknown": "unknown",
             "starting": "running", "stopping": "running", "restoring": "running",
             "resetting": "running", "pausing": "running", "suspending": "running",
             "continuing": "paused", "resuming": "suspended", "migrating": "running",
             "snapshoting": "running", "compacting": "stopped", "invalid": "unknown",
             "reconnecting": "unknown", "del_snapshot": "running", "syncing": "running"}
BEANCOUNTER_FIELDS = ("held", "maxheld", "barrier", "limit", "failcnt")
PAGE = 4096


def parse_vzlist(data: bytes) -> list[dict[str, Any]]:
    """``vzlist -a -j``: a JSON array of objects, one per container (with ``ctid``)."""
    value = loads(data, "vzlist -j")
    if not isinstance(value, list) or not all(isinstance(v, dict) and "ctid" in v for v in value):
        raise StateError("vzlist -j: expected a JSON array of containers")
    return value


def parse_prlctl(data: bytes) -> list[dict[str, Any]]:
    """``prlctl list -a -i -j``: a JSON array of objects with ``ID`` (UUID, braces stripped)."""
    value = loads(data, "prlctl list -j")
    if not isinstance(value, list) or not all(isinstance(v, dict) and "ID" in v for v in value):
        raise StateError("prlctl list -i -j: expected a JSON array of CTs and VMs")
    return value


def parse_veinfo(text: str) -> dict[str, tuple[int, list[str]]]:
    """``/proc/vz/veinfo``: ``CTID class numproc [IP...]`` per running container (CTID 0 is
    the host)."""
    out = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0] == "0" or not fields[2].isdigit():
            continue
        out[fields[0]] = (int(fields[2]), fields[3:])
    return out


def parse_beancounters(text: str) -> dict[str, dict[str, dict[str, int]]]:
    """``/proc/user_beancounters`` (Version 2.5): ``uid: resource held maxheld barrier limit
    failcnt`` then continuation lines without the uid."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    current: dict[str, dict[str, int]] | None = None
    for line in text.splitlines():
        if line.startswith("Version") or not line.strip():
            continue
        head, sep, rest = line.partition(":")
        if sep and head.strip() and " " not in head.strip():
            current = out.setdefault(head.strip(), {})
            line = rest
        fields = line.split()
        # "dummy" rows are the kernel's placeholders for retired counters
        if current is None or len(fields) != 6 or fields[0] in ("uid", "resource", "dummy"):
            continue
        try:
            values = [int(v) for v in fields[1:]]
        except ValueError:
            continue
        current[fields[0]] = dict(zip(BEANCOUNTER_FIELDS, values, strict=True))
    return out


def findings(counters: dict[str, Any]) -> list[dict[str, Any]]:
    """A finding for every beancounter whose ``failcnt`` is not zero (the resource ran out)."""
    out = []
    for resource, values in counters.items():
        if isinstance(values, dict) and isinstance(values.get("failcnt"), int) and values["failcnt"] > 0:
            out.append({"resource": resource, **{k: values.get(k) for k in BEANCOUNTER_FIELDS}})
    return sorted(out, key=lambda f: str(f["resource"]))


_VAR = re.compile(r"\$(\w+)|\$\{(\w+)\}")


def parse_conf(text: str, defaults: dict[str, str] | None = None) -> dict[str, str]:
    """A vzctl config (``NAME="value"`` shell assignments, ``#`` comments); ``$VAR`` and
    ``${VAR}`` are expanded from earlier values and *defaults* (``VEID``, vz.conf's)."""
    env = dict(defaults or {})
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        key = key.strip()
        if not eq or not key.replace("_", "").isalnum():
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        value = _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), value)
        env[key] = out[key] = value
    return out


_SIZE = re.compile(r"^(\d+)([KMGTP]?)$")
_MUL = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}


def conf_pages(value: str | None) -> int | None:
    """``PHYSPAGES="0:262144"`` / ``"0:1G"`` limit in bytes (pages without a suffix);
    ``unlimited`` or ``9223372036854775807`` is ``None``."""
    if not value:
        return None
    limit = value.split(":")[-1].strip().upper()
    m = _SIZE.match(limit)
    if not m or limit.startswith("9223372036854775807"):
        return None
    n = int(m.group(1))
    return n * _MUL[m.group(2)] if m.group(2) else n * PAGE


def mib(value: Any) -> int | None:
    """prlctl's ``"1024Mb"`` as bytes."""
    if isinstance(value, int):
        return value << 20
    if isinstance(value, str) and value.endswith("Mb") and value[:-2].isdigit():
        return int(value[:-2]) << 20
    return None


@dataclass(frozen=True)
class DiskDescriptor:
    """ploop ``DiskDescriptor.xml``: virtual size and the image files of the snapshot chain."""

    size: int | None            # bytes (Disk_size is in 512-byte sectors)
    images: tuple[str, ...]      # file names relative to the descriptor's directory
    blocksize: int | None        # sectors


def parse_disk_descriptor(data: bytes) -> DiskDescriptor:
    """``<Parallels_disk_image>`` (ploop lib/xml.c)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise StateError(f"malformed DiskDescriptor.xml: {exc}") from exc
    if root.tag != "Parallels_disk_image":
        raise StateError(f"DiskDescriptor.xml: unexpected <{root.tag[:40]}>")
    size = root.findtext("Disk_Parameters/Disk_size")
    block = root.findtext("StorageData/Storage/Blocksize")
    images = tuple((f.text or "").strip() for f in root.findall("StorageData/Storage/Image/File")
                   if (f.text or "").strip())
    return DiskDescriptor(int(size) * 512 if size and size.strip().isdigit() else None, images,
                          int(block) if block and block.strip().isdigit() else None)
