"""uReport v2 (docs/formats/libreport.md §4.2) as satyr writes and FAF accepts it: parse and validate.

:func:`parse` takes the raw bytes of the multipart ``file`` field, applies the JSON limits,
checks the document against the shapes satyr emits (types, lengths, FAF's patterns for the
OS name and version) and returns a :class:`UReport`. Unknown keys are ignored, as satyr and
FAF ignore them. Every refusal is one line naming the JSON path, e.g.
``problem.stacktrace[0].frames[2].build_id_offset: expected an integer``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from reporter.server.bthash import bthash
from reporter.server.errors import RejectedInput
from reporter.server.jsonlimits import loads_bounded

TYPES = ("core", "python", "kerneloops", "java", "ruby", "js")
MAX_STR = 4096
MAX_TEXT = 256 * 1024         # raw_oops and the like
MAX_ITEMS = 4096
_OS_NAME = re.compile(r"^[a-zA-Z0-9_.\-+~ ]{1,64}$")
_OS_VERSION = re.compile(r"^[a-zA-Z0-9_.\-+~]{1,64}$")
_HEX = re.compile(r"^[0-9a-fA-F]{1,128}$")


@dataclass(frozen=True)
class UReport:
    """A validated uReport and the fields the service uses."""

    doc: dict[str, Any]
    kind: str
    reason: str
    bthash: str
    component: str | None
    executable: str | None
    os: str
    architecture: str
    packages: tuple[str, ...]
    host: str | None
    kernel: str | None

    @property
    def problem(self) -> dict[str, Any]:
        """The ``problem`` object."""
        return dict(self.doc["problem"])


class _Checker:
    """Small typed accessors that raise with the JSON path."""

    @staticmethod
    def fail(path: str, what: str) -> RejectedInput:
        return RejectedInput(f"invalid uReport: {path}: {what}")

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, "expected an object")
        return value

    def lst(self, value: Any, path: str, limit: int = MAX_ITEMS) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, "expected an array")
        if len(value) > limit:
            raise self.fail(path, f"more than {limit} items")
        return value

    def string(self, d: dict[str, Any], key: str, path: str, *, required: bool = False,
               limit: int = MAX_STR, pattern: re.Pattern[str] | None = None) -> str | None:
        if key not in d:
            if required:
                raise self.fail(f"{path}.{key}", "missing")
            return None
        v = d[key]
        if not isinstance(v, str):
            raise self.fail(f"{path}.{key}", "expected a string")
        if len(v) > limit:
            raise self.fail(f"{path}.{key}", f"longer than {limit} characters")
        if pattern is not None and not pattern.match(v):
            raise self.fail(f"{path}.{key}", f"does not match {pattern.pattern}")
        return v

    def integer(self, d: dict[str, Any], key: str, path: str, *, required: bool = False,
                lo: int = 0, hi: int = (1 << 64) - 1) -> int | None:
        if key not in d:
            if required:
                raise self.fail(f"{path}.{key}", "missing")
            return None
        v = d[key]
        if not isinstance(v, int) or isinstance(v, bool):
            raise self.fail(f"{path}.{key}", "expected an integer")
        if not lo <= v <= hi:
            raise self.fail(f"{path}.{key}", f"out of range {lo}..{hi}")
        return v

    def boolean(self, d: dict[str, Any], key: str, path: str) -> None:
        if key in d and not isinstance(d[key], bool):
            raise self.fail(f"{path}.{key}", "expected true or false")


C = _Checker()


def parse(data: bytes, *, max_bytes: int, max_depth: int) -> UReport:
    """Parse and validate a uReport; raise :class:`RejectedInput` (400/413) otherwise."""
    doc = C.obj(loads_bounded(data, max_bytes=max_bytes, max_depth=max_depth, what="the uReport"), "uReport")
    return validate(doc)


def validate(doc: dict[str, Any]) -> UReport:
    """Check a parsed uReport document."""
    version = C.integer(doc, "ureport_version", "uReport", required=True, hi=1000)
    if version != 2:
        raise C.fail("uReport.ureport_version", f"version {version} is not supported (2 is)")
    reason = C.string(doc, "reason", "uReport", limit=1024) or ""
    if "reporter" in doc:
        rep = C.obj(doc["reporter"], "reporter")
        C.string(rep, "name", "reporter", limit=64)
        C.string(rep, "version", "reporter", limit=64)
    os_ = C.obj(doc.get("os"), "os")
    os_name = C.string(os_, "name", "os", required=True, pattern=_OS_NAME) or ""
    os_version = C.string(os_, "version", "os", required=True, pattern=_OS_VERSION) or ""
    arch = C.string(os_, "architecture", "os", required=True, limit=64) or ""
    for key in ("cpe", "desktop", "variant"):
        C.string(os_, key, "os", limit=256)
    problem = C.obj(doc.get("problem"), "problem")
    kind = C.string(problem, "type", "problem", required=True, limit=32) or ""
    if kind not in TYPES:
        raise C.fail("problem.type", f"'{kind}' is not one of {', '.join(TYPES)}")
    component = C.string(problem, "component", "problem", limit=256)
    C.integer(problem, "serial", "problem")
    executable = _check_problem(problem, kind)
    packages = _check_packages(doc.get("packages", []))
    host = None
    if "auth" in doc:
        auth = C.obj(doc["auth"], "auth")
        for key in auth:
            C.string(auth, key, "auth", limit=1024)
        host = auth.get("hostname")
    return UReport(doc=doc, kind=kind, reason=reason or _default_reason(problem, kind),
                   bthash=bthash(problem), component=component, executable=executable,
                   os=f"{os_name} {os_version}", architecture=arch, packages=packages,
                   host=host, kernel=problem.get("version") if kind == "kerneloops" else None)


def _check_problem(problem: dict[str, Any], kind: str) -> str | None:
    if kind == "core":
        C.integer(problem, "signal", "problem", hi=65535)
        executable = C.string(problem, "executable", "problem")
        C.boolean(problem, "only_crash_thread", "problem")
        threads = C.lst(problem.get("stacktrace"), "problem.stacktrace")
        if not threads:
            raise C.fail("problem.stacktrace", "no threads")
        for i, t in enumerate(threads):
            path = f"problem.stacktrace[{i}]"
            thread = C.obj(t, path)
            C.boolean(thread, "crash_thread", path)
            for j, f in enumerate(C.lst(thread.get("frames", []), f"{path}.frames")):
                _check_core_frame(C.obj(f, f"{path}.frames[{j}]"), f"{path}.frames[{j}]")
        return executable
    if kind == "python":
        C.string(problem, "exception_name", "problem", limit=256)
        for j, f in enumerate(C.lst(problem.get("stacktrace"), "problem.stacktrace")):
            path = f"problem.stacktrace[{j}]"
            frame = C.obj(f, path)
            for key in ("file_name", "special_file", "function_name", "special_function"):
                C.string(frame, key, path)
            C.string(frame, "line_contents", path, limit=MAX_TEXT)
            C.integer(frame, "file_line", path)
        return None
    if kind == "kerneloops":
        C.string(problem, "version", "problem", limit=256)
        C.string(problem, "raw_oops", "problem", limit=MAX_TEXT)
        for key in ("taint_flags", "modules"):
            for j, v in enumerate(C.lst(problem.get(key, []), f"problem.{key}")):
                if not isinstance(v, str) or len(v) > 256:
                    raise C.fail(f"problem.{key}[{j}]", "expected a short string")
        for j, f in enumerate(C.lst(problem.get("frames", []), "problem.frames")):
            path = f"problem.frames[{j}]"
            frame = C.obj(f, path)
            C.boolean(frame, "reliable", path)
            for key in ("address", "function_offset", "function_length", "from_address",
                        "from_function_offset", "from_function_length"):
                C.integer(frame, key, path)
            for key in ("function_name", "module_name", "from_function_name", "from_module_name",
                        "special_stack"):
                C.string(frame, key, path, limit=512)
        return None
    for key, value in problem.items():  # java, ruby, js: shapes vary; bounded by the JSON limits
        if key == "stacktrace" and not isinstance(value, (list, dict)):
            raise C.fail("problem.stacktrace", "expected an array or an object")
    return None


def _check_core_frame(frame: dict[str, Any], path: str) -> None:
    C.integer(frame, "address", path)
    C.integer(frame, "build_id_offset", path)
    C.string(frame, "build_id", path, limit=128, pattern=_HEX)
    C.string(frame, "fingerprint", path, limit=256)
    C.string(frame, "function_name", path)
    C.string(frame, "file_name", path)
    C.boolean(frame, "fingerprint_hashed", path)


def _check_packages(value: Any) -> tuple[str, ...]:
    out = []
    for i, p in enumerate(C.lst(value, "packages")):
        path = f"packages[{i}]"
        pkg = C.obj(p, path)
        name = C.string(pkg, "name", path, required=True, limit=256)
        version = C.string(pkg, "version", path, limit=256)
        release = C.string(pkg, "release", path, limit=256)
        arch = C.string(pkg, "architecture", path, limit=64)
        epoch = C.integer(pkg, "epoch", path, hi=1 << 32)
        C.integer(pkg, "install_time", path)
        role = C.string(pkg, "package_role", path, limit=64)
        if role == "affected":
            evr = f"{epoch}:" if epoch else ""
            out.append(f"{name}-{evr}{version or '?'}-{release or '?'}" + (f".{arch}" if arch else ""))
    return tuple(out)


def _default_reason(problem: dict[str, Any], kind: str) -> str:
    if kind == "core":
        return f"Program {problem.get('executable') or '<unknown>'} was terminated by signal {problem.get('signal', 0)}"
    return f"{kind} problem in {problem.get('component') or 'unknown component'}"


def parse_attachment(data: bytes, *, max_bytes: int) -> tuple[str, str, str]:
    """A FAF attachment ``{"bthash", "type", "data"}`` (FAF: data ≤ 1024 characters)."""
    doc = C.obj(loads_bounded(data, max_bytes=max_bytes, max_depth=4, what="the attachment"), "attachment")
    hash_ = C.string(doc, "bthash", "attachment", required=True, limit=64, pattern=_HEX) or ""
    kind = C.string(doc, "type", "attachment", required=True, limit=64) or ""
    value = C.string(doc, "data", "attachment", required=True, limit=1024) or ""
    return hash_.lower(), kind, value

