"""uReport version 2 from a problem directory, as satyr builds it (docs/formats/libreport.md §4.2).

Keys in satyr's order: ``ureport_version``, ``reason``, ``reporter``, ``os``, ``problem``,
``packages``, optional ``auth``. The problem type follows the ``type`` element's prefix
(``CCpp`` core, ``Python`` python, ``Kerneloops``); ``os`` comes from ``os_info`` (``ID``,
``VERSION_ID``, Rawhide, ``CPE_NAME``, ``VARIANT_ID``), else ``os_release``; packages from
``pkg_*`` plus ``dso_list``, sorted and merged by NEVRA. Where satyr gives up and crashkit
goes on: no ``pkg_*`` gives ``packages: []`` and component ``<basename>-unpackaged``; no
``count`` gives serial 1. Pure: a mapping of element texts in, a dict out.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reporter.reporters import ureport_koops, ureport_python

REPORTER_NAME = "crashkit"
REPORTER_VERSION = "0.1.0"
MAX_UINT16 = 0xFFFF


class UReportError(ValueError):
    """The directory cannot make a uReport (unknown type, unreadable backtrace...)."""


def problem_type(type_text: str) -> str:
    """satyr's mapping of the ``type`` element: prefix CCpp/Python/Kerneloops/Java."""
    for prefix, name in (("CCpp", "core"), ("Python", "python"), ("Kerneloops", "kerneloops"), ("Java", "java")):
        if type_text.startswith(prefix):
            return name
    raise UReportError(f"no uReport for problem type '{type_text}'")


# ---------------------------------------------------------------- os


def _unescape_osinfo(value: str) -> str:
    out = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\":
            if i + 1 >= len(value):
                break
            out.append(value[i + 1])
            i += 2
            continue
        if c not in "'\"":
            out.append(c)
        i += 1
    return "".join(out)


def parse_os_release(text: str) -> list[tuple[str, str]]:
    """satyr's ``sr_parse_os_release``: ``KEY=VALUE`` lines in order (quotes dropped,
    ``\\`` escapes); comment lines, lines without ``=`` and empty keys are skipped."""
    out: list[tuple[str, str]] = []
    for line in text.split("\n"):
        if line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if key:
            out.append((key, _unescape_osinfo(value)))
    return out


def os_from(elements: Mapping[str, str]) -> dict[str, Any]:
    """The ``os`` object (name, version, architecture, cpe, desktop, variant)."""
    name = version = cpe = variant = None
    info = elements.get("os_info")
    for key, value in parse_os_release(info or ""):
        if key == "ID":
            name = value
        elif key == "VERSION_ID":
            version = version or value  # the first VERSION_ID wins, as in satyr
        elif key == "VERSION" and "(Rawhide)" in value:
            version = "rawhide"
        elif key == "CPE_NAME":
            cpe = value
        elif key == "VARIANT_ID":
            variant = value
    if not (name and version):
        name, version = _system_release(elements.get("os_release", ""))
        cpe = variant = None
    if not (name and version):
        raise UReportError("Failed to parse operating system release string")
    arch = elements.get("architecture")
    if not arch:
        raise UReportError("no 'architecture' element")
    out: dict[str, Any] = {"name": name, "version": version, "architecture": arch}
    if cpe:
        out["cpe"] = cpe
    desktop = _desktop(elements.get("environ", ""))
    if desktop:
        out["desktop"] = desktop
    if variant:
        out["variant"] = variant
    return out


def _system_release(text: str) -> tuple[str | None, str | None]:
    at = text.find(" release ")
    if at < 0:
        return None, None
    if text[:24].lower() == "red hat enterprise linux":
        name = "rhel"
    else:
        name = text[:at].lower()
        if not name:
            return None, None
    rest = text[at + len(" release "):]
    m = re.match(r"[0-9.]*", rest)
    version = m.group(0) if m and m.group(0) else rest
    return name, version


def _desktop(environ: str) -> str | None:
    at = environ.find("DESKTOP_SESSION=")
    if at < 0 or (at > 0 and environ[at - 1] != "\n"):
        return None
    return environ[at + len("DESKTOP_SESSION="):].split("\n", 1)[0]


# ---------------------------------------------------------------- packages


def _b(text: str | None) -> bytes:
    return (text or "").encode("utf-8", "surrogateescape")


@dataclass
class Package:
    """An RPM package as satyr keeps it."""

    name: str
    epoch: int
    version: str
    release: str
    architecture: str | None
    install_time: int = 0
    affected: bool = False

    def nevra_key(self) -> tuple[bytes, bytes, bytes, int, bytes]:
        """satyr's ``sr_rpm_package_cmp_nevra`` order (strcmp on bytes)."""
        return _b(self.name), _b(self.version), _b(self.release), self.epoch, _b(self.architecture)

    def to_json(self) -> dict[str, Any]:
        """satyr's key order; install_time only when known, role only when set."""
        out: dict[str, Any] = {"name": self.name, "epoch": self.epoch, "version": self.version,
                               "release": self.release}
        if self.architecture:
            out["architecture"] = self.architecture
        if self.install_time > 0:
            out["install_time"] = self.install_time
        if self.affected:
            out["package_role"] = "affected"
        return out


def parse_nevra(text: str) -> Package | None:
    """``name-[epoch:]version-release.arch`` (also ``epoch:name-...``)."""
    name_vr, dot, arch = text.rpartition(".")
    if not dot or not arch:
        return None
    name_v, dash, release = name_vr.rpartition("-")
    name, dash2, version = name_v.rpartition("-")
    if not dash or not dash2 or not name or not version or not release:
        return None
    epoch = 0
    if ":" in version:
        e, _, version = version.partition(":")
        if not e.isdigit():
            return None
        epoch = int(e)
    elif ":" in name:
        e, _, name = name.partition(":")
        if not e.isdigit():
            return None
        epoch = int(e)
    return Package(name, epoch, version, release, arch)


def parse_dso_list(text: str) -> list[Package]:
    """satyr's ``sr_abrt_parse_dso_list``: ``<path> <NEVRA> (<vendor>) <installtime>`` lines;
    a last line without ``\\n`` is dropped, as satyr drops it."""
    out: list[Package] = []
    for line in text.split("\n")[:-1]:
        _path, sp, rest = line.partition(" ")
        if not sp:
            continue
        nevra, sp2, _tail = rest.partition(" ")
        if not sp2 or len(nevra) <= 1:
            continue
        pkg = parse_nevra(nevra)
        last = line.rsplit(" ", 1)[-1]
        if pkg is None or not last.isdigit():
            continue
        pkg.install_time = int(last)
        out.append(pkg)
    return out


def _merge(a: Package, b: Package) -> Package | None:
    if (a.name, a.version, a.release, a.epoch) != (b.name, b.version, b.release, b.epoch):
        return None
    if a.architecture and b.architecture and a.architecture != b.architecture:
        return None
    return Package(a.name, a.epoch, a.version, a.release, a.architecture or b.architecture,
                   a.install_time or b.install_time, a.affected or b.affected)


def packages_from(elements: Mapping[str, str]) -> list[Package]:
    """The affected package (``pkg_*``) plus ``dso_list``'s, sorted and merged (satyr's
    ``sr_rpm_package_sort`` + ``sr_rpm_package_uniq``); [] without ``pkg_*``."""
    fields = [elements.get(k) for k in ("pkg_name", "pkg_version", "pkg_release", "pkg_arch")]
    epoch_text = elements.get("pkg_epoch")
    if epoch_text is None or not all(fields):
        return []
    name, version, release, arch = (f.split("\n", 1)[0] for f in fields)  # type: ignore[union-attr]
    epoch = int(epoch_text) if epoch_text.strip().isdigit() else 0
    pkgs = [Package(name, epoch, version, release, arch, affected=True)]
    dso = parse_dso_list(elements.get("dso_list", ""))
    if not dso:
        return pkgs
    ordered = sorted(pkgs + dso, key=Package.nevra_key)
    merged: list[Package] = []
    for pkg in ordered:
        if merged:
            joined = _merge(merged[-1], pkg)
            if joined is not None:
                merged[-1] = joined
                continue
        merged.append(pkg)
    return merged


# ---------------------------------------------------------------- core


def _frame(f: Any) -> dict[str, Any]:
    """One frame in satyr's key order; ``__kernel_vsyscall`` without a file gets "kernel"."""
    if not isinstance(f, dict):
        raise UReportError("core_backtrace: a frame is not an object")
    for key, kind in (("address", int), ("build_id", str), ("build_id_offset", int),
                      ("function_name", str), ("file_name", str), ("fingerprint", str)):
        value = f.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise UReportError(f"core_backtrace: frame {key} has the wrong type")
    file_name = f.get("file_name")
    if file_name is None and f.get("function_name") == "__kernel_vsyscall":
        file_name = "kernel"
    values = (("address", f.get("address")), ("build_id", f.get("build_id")),
              ("build_id_offset", f.get("build_id_offset")), ("function_name", f.get("function_name")),
              ("file_name", file_name), ("fingerprint", f.get("fingerprint")))
    out = {k: v for k, v in values if v is not None}
    if "fingerprint" in out and f.get("fingerprint_hashed") is False:
        out["fingerprint_hashed"] = False
    return out


def core_problem(core_backtrace: str) -> tuple[dict[str, Any], str]:
    """The core-specific problem keys and the reason, from ``core_backtrace`` JSON."""
    try:
        doc = json.loads(core_backtrace)
    except ValueError as exc:
        raise UReportError(f"core_backtrace is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise UReportError("core_backtrace is not a JSON object")
    signal = doc.get("signal", 0)
    if not isinstance(signal, int) or isinstance(signal, bool) or not 0 <= signal <= MAX_UINT16:
        raise UReportError("core_backtrace: bad signal")
    out: dict[str, Any] = {"signal": signal}
    executable = doc.get("executable")
    if isinstance(executable, str):
        out["executable"] = executable
    if doc.get("only_crash_thread") is True:
        out["only_crash_thread"] = True
    threads = doc.get("stacktrace") or []
    if not isinstance(threads, list):
        raise UReportError("core_backtrace: stacktrace is not a list")
    crash_index = next((i for i, t in enumerate(threads) if isinstance(t, dict) and t.get("crash_thread") is True),
                       0)
    out_threads: list[dict[str, Any]] = []
    for i, thread in enumerate(threads):
        if not isinstance(thread, dict):
            raise UReportError("core_backtrace: a thread is not an object")
        frames = [_frame(f) for f in thread.get("frames") or []]
        if not frames:
            out_threads.append({})
            continue
        item: dict[str, Any] = {"crash_thread": True} if i == crash_index else {}
        item["frames"] = frames
        out_threads.append(item)
    out["stacktrace"] = out_threads
    reason = f"Program {executable if isinstance(executable, str) else '<unknown>'} was terminated by signal {signal}"
    return out, reason


# ---------------------------------------------------------------- assembly


def component_of(elements: Mapping[str, str]) -> str | None:
    """``component``; for an unpackaged program ``<basename(executable)>-unpackaged``."""
    if elements.get("component"):
        return elements["component"].split("\n", 1)[0]
    exe = elements.get("executable")
    if exe:
        return os.path.basename(exe.split("\n", 1)[0]) + "-unpackaged"
    return None


def build(elements: Mapping[str, str], *, reporter: tuple[str, str] = (REPORTER_NAME, REPORTER_VERSION),
          auth: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The uReport of a problem directory's *elements* (name → text)."""
    kind = problem_type(elements.get("type", ""))
    if kind == "java":
        raise UReportError("Java uReports are not supported")
    os_obj = os_from(elements)
    problem: dict[str, Any] = {"type": kind}
    component = component_of(elements)
    if kind == "kerneloops":
        component = elements.get("component") or "kernel"
    if component:
        problem["component"] = component
    if kind != "kerneloops":
        problem["user"] = {"root": False, "local": True}
    count = elements.get("count", "").strip()
    problem["serial"] = int(count) if count.isdigit() else 1
    if kind == "core":
        if "core_backtrace" not in elements:
            raise UReportError("no 'core_backtrace' element")
        specific, reason = core_problem(elements["core_backtrace"])
    elif kind == "python":
        specific, reason = ureport_python.python_problem(elements.get("backtrace", ""))
    else:
        if "kernel" not in elements:
            raise UReportError("no 'kernel' element")
        specific, reason = ureport_koops.koops_problem(elements.get("backtrace", ""), elements["kernel"])
    problem.update(specific)
    packages = [p.to_json() for p in packages_from(elements)]
    interpreter = elements.get("interpreter")
    if interpreter and kind == "python":
        pkg = parse_nevra(interpreter.strip())
        if pkg is not None and all(p["name"] != pkg.name for p in packages):
            packages.append(pkg.to_json())
    report: dict[str, Any] = {
        "ureport_version": 2, "reason": reason,
        "reporter": {"name": reporter[0], "version": reporter[1]},
        "os": os_obj, "problem": problem, "packages": packages}
    if auth:
        # satyr prepends each auth entry: the last item comes first.
        report["auth"] = dict(reversed(list(auth.items())))
    return report


def to_json(report: dict[str, Any]) -> bytes:
    """The uReport as sent (compact JSON, key order kept)."""
    return json.dumps(report, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
