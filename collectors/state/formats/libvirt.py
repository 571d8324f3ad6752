"""virsh output and libvirt domain XML (virsh(1); formatdomain.html; the ``<domstatus>``
wrapper of ``/run/libvirt/qemu/NAME.xml`` as written by src/qemu/qemu_domain.c)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from collectors.errors import StateError
from collectors.state.signals import is_uuid

#: ``virsh domstate`` strings (virshDomainStateToString) → our states.
STATE_MAP = {"running": "running", "idle": "running", "in shutdown": "running",
             "blocked": "running", "paused": "paused", "shut off": "stopped",
             "crashed": "crashed", "pmsuspended": "suspended", "no state": "unknown",
             # <domstatus state=...> uses virDomainState names
             "shutoff": "stopped", "shutdown": "running", "nostate": "unknown"}

_UNITS = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1 << 20, "mib": 1 << 20,
          "mb": 10 ** 6, "g": 1 << 30, "gib": 1 << 30, "gb": 10 ** 9, "t": 1 << 40, "tib": 1 << 40}


@dataclass(frozen=True)
class DomainDisk:
    source: str
    format: str | None
    target: str | None


@dataclass(frozen=True)
class DomainXml:
    """What we keep of a domain's XML."""

    name: str
    uuid: str | None
    domain_type: str | None
    memory: int | None            # bytes
    current_memory: int | None    # bytes
    vcpus: int | None
    os_type: str | None
    arch: str | None
    disks: tuple[DomainDisk, ...]
    macs: tuple[str, ...]
    status_state: str | None = None   # <domstatus state=...>
    status_reason: str | None = None
    pid: int | None = None


def parse_uuid_list(text: str) -> list[str]:
    """``virsh list --all --uuid``: one UUID per line; anything else is malformed output."""
    uuids = [line.strip() for line in text.splitlines() if line.strip()]
    bad = [u for u in uuids if not is_uuid(u)]
    if bad:
        raise StateError(f"virsh list --uuid printed {bad[0][:60]!r}, not a UUID")
    return uuids


def parse_dominfo(text: str) -> dict[str, str]:
    """``virsh dominfo``: ``Key:   value`` lines."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out


def parse_domstate(text: str) -> tuple[str, str | None]:
    """``virsh domstate --reason``: ``shut off (destroyed)`` → (``shut off``, ``destroyed``)."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if line.endswith(")") and " (" in line:
        state, _, reason = line[:-1].rpartition(" (")
        return state, reason
    return line, None


def kib(value: str | None) -> int | None:
    """``8388608 KiB`` (dominfo) as bytes."""
    if not value:
        return None
    parts = value.split()
    try:
        n = int(parts[0])
    except (ValueError, IndexError):
        return None
    return n * _UNITS.get(parts[1].lower(), 1024) if len(parts) > 1 else n * 1024


def cpu_seconds(value: str | None) -> float | None:
    """``1796284232.3s`` (dominfo ``CPU time``) as seconds."""
    try:
        return float(value.rstrip("s")) if value else None
    except ValueError:
        return None


def _size(elem: ET.Element | None) -> int | None:
    if elem is None or not (elem.text or "").strip():
        return None
    try:
        n = int((elem.text or "").strip())
    except ValueError:
        return None
    return n * _UNITS.get(elem.get("unit", "KiB").lower(), 1024)


def _int(text: str | None) -> int | None:
    try:
        return int((text or "").strip())
    except ValueError:
        return None


def parse_domain_xml(data: bytes | str) -> DomainXml:
    """A ``<domain>`` (``virsh dumpxml``, ``/etc/libvirt/qemu/NAME.xml``) or a
    ``<domstatus>`` wrapping one; malformed XML raises :class:`StateError`."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise StateError(f"malformed domain XML: {exc}") from exc
    status_state = status_reason = None
    pid = None
    if root.tag == "domstatus":
        status_state, status_reason, pid = root.get("state"), root.get("reason"), _int(root.get("pid"))
        inner = root.find("domain")
        if inner is None:
            raise StateError("domain status XML without a <domain>")
        root = inner
    if root.tag != "domain":
        raise StateError(f"expected <domain>, got <{root.tag[:40]}>")
    name = (root.findtext("name") or "").strip()
    if not name:
        raise StateError("domain XML without a <name>")
    os_type = root.find("os/type")
    disks = []
    for disk in root.findall("devices/disk"):
        src = disk.find("source")
        path = None
        if src is not None:
            path = src.get("file") or src.get("dev") or src.get("name") or src.get("volume")
        if path:
            driver, target = disk.find("driver"), disk.find("target")
            disks.append(DomainDisk(path, driver.get("type") if driver is not None else None,
                                    target.get("dev") if target is not None else None))
    macs = tuple(m.get("address", "") for m in root.findall("devices/interface/mac") if m.get("address"))
    uuid = (root.findtext("uuid") or "").strip().lower() or None
    return DomainXml(name, uuid, root.get("type"), _size(root.find("memory")),
                     _size(root.find("currentMemory")), _int(root.findtext("vcpu")),
                     (os_type.text or "").strip() if os_type is not None else None,
                     os_type.get("arch") if os_type is not None else None, tuple(disks), macs,
                     status_state, status_reason, pid)


def split_batch(text: str, marker: str) -> dict[tuple[str, str], str]:
    """Sections of one ``virsh "echo MARK part uuid; cmd; ..."`` run, keyed (part, uuid)."""
    sections: dict[tuple[str, str], list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines(keepends=True):
        if line.startswith(marker + " "):
            fields = line.split()
            if len(fields) == 3:
                current = sections.setdefault((fields[1], fields[2]), [])
                continue
        if current is not None:
            current.append(line)
    return {k: "".join(v) for k, v in sections.items()}


# virsh's words for the libvirt API's numbers (tools/virsh-domain-monitor.c: the
# virshDomainState and virshDomain*Reason tables), so that the binding path prints what
# ``virsh domstate --reason`` does. Indexed by virDomainState and by each state's reason enum.
VIRSH_STATES = ("no state", "running", "idle", "paused", "in shutdown", "shut off", "crashed",
                "pmsuspended")
VIRSH_REASONS: tuple[tuple[str, ...], ...] = (
    ("unknown",),                                                         # no state
    ("unknown", "booted", "migrated", "restored", "from snapshot", "unpaused",
     "migration canceled", "save canceled", "event wakeup", "crashed", "post-copy",
     "post-copy failed"),                                                 # running
    ("unknown",),                                                         # idle (blocked)
    ("unknown", "user", "migrating", "saving", "dumping", "I/O error", "watchdog",
     "from snapshot", "shutting down", "creating snapshot", "crashed", "starting up",
     "post-copy", "post-copy failed", "api error"),                       # paused
    ("unknown", "user"),                                                  # in shutdown
    ("unknown", "shutdown", "destroyed", "crashed", "migrated", "saved", "failed",
     "from snapshot", "daemon"),                                          # shut off
    ("unknown", "panicked"),                                              # crashed
    ("unknown",),                                                         # pmsuspended
)


def virsh_state(state: int, reason: int) -> tuple[str, str]:
    """``(state, reason)`` as ``virsh domstate --reason`` words them (``unknown`` for a number
    this table does not know, as virsh does)."""
    words = VIRSH_STATES[state] if 0 <= state < len(VIRSH_STATES) else "no state"
    reasons = VIRSH_REASONS[state] if 0 <= state < len(VIRSH_REASONS) else ()
    return words, reasons[reason] if 0 <= reason < len(reasons) else "unknown"


#: virDomainGetInfo's ``maxMem`` for "no limit" (virsh compares with UINT_MAX).
NO_MEMORY_LIMIT = (1 << 32) - 1


def virsh_dominfo(dom_id: int, os_type: str, info: list[int], persistent: int,
                  autostart: int | None, security_model: str | None) -> dict[str, str]:
    """The fields of ``virsh dominfo`` that the plugin reads, worded as virsh prints them,
    from the libvirt API's values (``info`` = virDomainGetInfo: state, maxMem KiB, memory KiB,
    nrVirtCpu, cpuTime ns)."""
    _state, max_mem, memory, ncpus, cpu_time = info[:5]
    out = {"Id": "-" if dom_id < 0 else str(dom_id), "OS Type": os_type, "CPU(s)": str(ncpus)}
    if cpu_time:
        out["CPU time"] = f"{cpu_time / 1e9:.1f}s"
    out["Max memory"] = "no limit" if max_mem == NO_MEMORY_LIMIT else f"{max_mem} KiB"
    out["Used memory"] = f"{memory} KiB"
    out["Persistent"] = {1: "yes", 0: "no"}.get(persistent, "unknown")
    if autostart is not None:
        out["Autostart"] = "enable" if autostart else "disable"
    if security_model:
        out["Security model"] = security_model
    return out
