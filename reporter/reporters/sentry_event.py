"""A problem directory as a Sentry native event (docs/formats/sentry.md). Pure: texts in, dict out.

* ``exception``: the signal (``SIGSEGV``, mechanism ``signalhandler`` with ``meta.signal``)
  for a core, the oops title for a kernel oops, the exception for Python; its stack trace is
  the crash thread's;
* ``threads``: every thread of ``core_backtrace``, frames **caller first** (satyr lists the
  innermost first), each with ``instruction_addr``, ``package`` (the module), ``function``,
  ``image_addr`` (address − build_id_offset) and ``in_app`` (the executable's own frames);
* ``debug_meta.images``: one ELF image per module, ``code_id`` = build-id, ``debug_id`` by
  Sentry's rule (:mod:`reporter.reporters.debugid`), address and size from ``maps``;
* tags (host, kernel, executable, container, signal, crash_function) and contexts (os,
  device, and ``crashkit`` with the reason, duphash, pid, uid);
* ``fingerprint``: ``["crashkit", <duphash>]``, so Sentry groups as crashkit's buckets.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from reporter import redact
from reporter.reporters import ureport_koops, ureport_python
from reporter.reporters.debugid import debug_id

SIGNALS = {1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
           8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
           14: "SIGALRM", 15: "SIGTERM", 24: "SIGXCPU", 25: "SIGXFSZ", 31: "SIGSYS"}
_MAPS = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ \d+\s+(/.*)$")
TAG_LIMIT = 200


def _hex(value: int) -> str:
    return f"0x{value:x}"


def module_ranges(maps: str) -> dict[str, tuple[int, int]]:
    """``path -> (lowest start, highest end)`` of the file mappings in a ``maps`` element."""
    out: dict[str, tuple[int, int]] = {}
    for line in maps.splitlines():
        m = _MAPS.match(line)
        if not m:
            continue
        start, end, path = int(m.group(1), 16), int(m.group(2), 16), m.group(4).removesuffix(" (deleted)")
        lo, hi = out.get(path, (start, end))
        out[path] = (min(lo, start), max(hi, end))
    return out


def _frame(f: Mapping[str, Any], executable: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(f.get("address"), int):
        out["instruction_addr"] = _hex(f["address"])
        if isinstance(f.get("build_id_offset"), int) and f["address"] >= f["build_id_offset"]:
            out["image_addr"] = _hex(f["address"] - f["build_id_offset"])
    if f.get("function_name"):
        out["function"] = f["function_name"]
    if f.get("file_name"):
        out["package"] = f["file_name"]
    out["in_app"] = bool(executable) and f.get("file_name") == executable
    return out


def _images(threads: list[Any], maps: str, arch: str | None) -> list[dict[str, Any]]:
    ranges = module_ranges(maps)
    seen: dict[str, dict[str, Any]] = {}
    for thread in threads:
        for f in thread.get("frames", []) if isinstance(thread, dict) else []:
            bid, path = f.get("build_id"), f.get("file_name")
            if not isinstance(bid, str) or not re.fullmatch(r"[0-9a-fA-F]{2,}", bid) or bid in seen or not path:
                continue  # Sentry needs code_file for an ELF image
            image: dict[str, Any] = {"type": "elf", "code_id": bid.lower(), "debug_id": debug_id(bid),
                                     "code_file": path, "debug_file": path}
            if path in ranges:
                image["image_addr"] = _hex(ranges[path][0])
                image["image_size"] = ranges[path][1] - ranges[path][0]
            elif isinstance(f.get("address"), int) and isinstance(f.get("build_id_offset"), int):
                image["image_addr"] = _hex(f["address"] - f["build_id_offset"])
            if arch:
                image["arch"] = arch
            seen[bid] = image
    return list(seen.values())


def _core(elements: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """``(exception, threads, images)`` of a core's ``core_backtrace``."""
    doc = json.loads(elements.get("core_backtrace") or "{}")
    if not isinstance(doc, dict):
        doc = {}
    executable = elements.get("executable") or doc.get("executable")
    raw = doc.get("stacktrace")
    threads = [t for t in raw if isinstance(t, dict)] if isinstance(raw, list) else []
    crash = next((i for i, t in enumerate(threads) if t.get("crash_thread") is True), 0)
    values = []
    for i, t in enumerate(threads):
        frames = [_frame(f, executable) for f in t.get("frames") or [] if isinstance(f, dict)]
        frames.reverse()  # Sentry: caller first, crashing frame last
        values.append({"id": i, "crashed": i == crash, "current": i == crash,
                       **({"stacktrace": {"frames": frames}} if frames else {})})
    signo = doc.get("signal") if isinstance(doc.get("signal"), int) and doc.get("signal") else None
    signo = signo or _int(elements.get("signal"))  # a gcore'd process has signal 0 in its notes
    name = SIGNALS.get(signo or 0, f"signal {signo}" if signo else "crash")
    exc: dict[str, Any] = {"type": name, "value": elements.get("reason") or f"killed by {name}",
                           "mechanism": {"type": "signalhandler", "handled": False,
                                         "meta": {"signal": {"number": signo or 0, "name": name}}}}
    if values and "stacktrace" in values[crash]:
        exc["stacktrace"] = values[crash]["stacktrace"]
        exc["thread_id"] = values[crash]["id"]
    arch = elements.get("architecture")
    return exc, {"values": values}, _images(threads, elements.get("maps", ""), arch)


def _int(text: str | None) -> int | None:
    return int(text) if text and text.strip().isdigit() else None


def _koops(elements: Mapping[str, str]) -> dict[str, Any]:
    text = elements.get("backtrace", "")
    frames = ureport_koops.parse_frames(text)
    title = elements.get("oops_title") or ureport_koops.reason(text, frames)
    sentry_frames = [{"function": f["function_name"], **({"package": f["module_name"]} if f.get("module_name") else
                                                          {"package": "vmlinux"}),
                      **({"instruction_addr": _hex(f["address"])} if f.get("address") else {}),
                      "in_app": bool(f.get("reliable"))}
                     for f in frames if f.get("function_name")]
    sentry_frames.reverse()
    return {"type": elements.get("oops_kind") or title.split(" in ")[0] or "oops", "value": title,
            "mechanism": {"type": "kerneloops", "handled": False},
            **({"stacktrace": {"frames": sentry_frames}} if sentry_frames else {})}


def _python(elements: Mapping[str, str]) -> dict[str, Any]:
    name, frames = ureport_python.parse(elements.get("backtrace", ""))
    out = [{"filename": f.get("file_name", f.get("special_file", "")), "lineno": f.get("file_line", 0),
            "function": f.get("function_name", f.get("special_function", "")),
            **({"context_line": redact.redact_text(f["line_contents"])} if "line_contents" in f else {})}
           for f in reversed(frames)]
    value = elements.get("reason") or name
    return {"type": name, "value": value, "mechanism": {"type": "excepthook", "handled": False},
            "stacktrace": {"frames": out}}


def _first(text: str | None) -> str | None:
    return text.strip().split("\n", 1)[0][:TAG_LIMIT] if text and text.strip() else None


def build(elements: Mapping[str, str], event_id: str) -> dict[str, Any]:
    """The event for a problem directory's element texts (*event_id*: 32 hex digits)."""
    kind = elements.get("type", "")
    event: dict[str, Any] = {"event_id": event_id, "level": "fatal", "logger": "crashkit"}
    if kind.startswith("Kerneloops"):
        event["platform"] = "native"
        event["exception"] = {"values": [_koops(elements)]}
    elif kind.startswith("Python"):
        event["platform"] = "python"
        event["exception"] = {"values": [_python(elements)]}
    else:
        exc, threads, images = _core(elements)
        event["platform"] = "native"
        event["exception"] = {"values": [exc]}
        if threads["values"]:
            event["threads"] = threads
        if images:
            event["debug_meta"] = {"images": images}
    when = _int(elements.get("time"))
    if when:
        event["timestamp"] = when
    host = _first(elements.get("hostname"))
    if host:
        event["server_name"] = host
    tags = {"host": host, "kernel": _first(elements.get("kernel")),
            "executable": _first(elements.get("executable")),
            "container": _first(elements.get("container_id")) or _first(elements.get("container")),
            "crash_function": _first(elements.get("crash_function")), "problem_type": _first(kind),
            "signal": event["exception"]["values"][0]["type"] if kind.startswith("CCpp") else None}
    event["tags"] = {k: v for k, v in tags.items() if v}
    event["contexts"] = _contexts(elements)
    duphash = _first(elements.get("duphash")) or _first(elements.get("uuid"))
    if duphash:
        event["fingerprint"] = ["crashkit", duphash]
    package = _first(elements.get("package"))
    if package:
        event["release"] = package
    return event


def _contexts(elements: Mapping[str, str]) -> dict[str, Any]:
    os_name = os_version = None
    for line in (elements.get("os_info") or "").splitlines():
        key, _, value = line.partition("=")
        if key == "NAME":
            os_name = value.strip('"')
        elif key == "VERSION_ID":
            os_version = value.strip('"')
    contexts: dict[str, Any] = {
        "os": {"type": "os", "name": os_name or "Linux", **({"version": os_version} if os_version else {}),
               **({"kernel_version": _first(elements.get("kernel"))} if elements.get("kernel") else {})},
        "device": {"type": "device", **({"arch": _first(elements.get("architecture"))}
                                         if elements.get("architecture") else {})},
    }
    crash = {k: _first(elements.get(k)) for k in ("reason", "duphash", "pid", "uid", "executable",
                                                   "container_id", "container", "component", "package")}
    cmdline = elements.get("cmdline")
    if cmdline:
        crash["cmdline"] = redact.redact_cmdline(cmdline)[:1000]
    contexts["crashkit"] = {"type": "default", **{k: v for k, v in crash.items() if v}}
    return contexts


def attachment_names(elements: Mapping[str, str]) -> list[str]:
    """Text elements attached besides the minimized core."""
    wanted = ("core_backtrace", "backtrace", "maps", "cmdline", "environ", "dso_list", "open_fds",
              "proc_pid_status", "limits", "container_state.json", "host_checks.json", "kernel_report.json")
    return [n for n in wanted if n in elements]


def executable_name(elements: Mapping[str, str]) -> str:
    """A short name for file names (the executable's basename)."""
    return os.path.basename(_first(elements.get("executable")) or "crash") or "crash"
