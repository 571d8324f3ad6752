"""libvirt domains through the libvirt Python binding (``libvirt-python``), when it is
installed: the same facts that the virsh batch gives (docs/state.md), read in-process.

The binding has no timeout of its own, so the calls run in a daemon thread that is abandoned
at the plugin's timeout (a hung daemon then costs a thread, not the run). libvirt's default
error handler, which prints every error on stderr, is replaced by a silent one: errors reach
us as ``libvirtError`` and become :class:`StateError`.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from collectors.errors import StateError
from collectors.state.formats import libvirt as fmt

T = TypeVar("T")
_module: list[ModuleType | None] = []
_lock = threading.Lock()


@dataclass(frozen=True)
class BoundDomain:
    """One domain as the virsh path sees it: its XML, dominfo fields and domstate words."""

    xml: str
    info: dict[str, str]
    native_state: str
    reason: str


def binding() -> ModuleType | None:
    """The ``libvirt`` module with its errors silenced, or None where it is not installed."""
    with _lock:
        if not _module:
            try:
                mod: ModuleType | None = importlib.import_module("libvirt")
            except ImportError:
                mod = None
            if mod is not None:
                mod.registerErrorHandler(lambda _ctx, _err: None, None)
            _module.append(mod)
        return _module[0]


def read_domains(uri: str, timeout: float) -> list[BoundDomain]:
    """Every domain of *uri* (read-only connection); :class:`StateError` when the connection
    or a call fails, or nothing answers within *timeout* seconds."""
    lv = binding()
    if lv is None:
        raise StateError("the libvirt Python binding is not installed")
    try:
        return _with_timeout(lambda: _read(lv, uri), timeout)
    except lv.libvirtError as exc:
        raise StateError(f"libvirt: {' '.join(str(exc).split()) or 'failed'}") from exc


def _read(lv: Any, uri: str) -> list[BoundDomain]:
    conn = lv.openReadOnly(uri)
    try:
        model = _security_model(lv, conn)
        out = []
        for dom in conn.listAllDomains(0):
            try:
                state, reason = dom.state(0)
                native, why = fmt.virsh_state(state, reason)
                info = fmt.virsh_dominfo(dom.ID(), dom.OSType(), dom.info(), dom.isPersistent(),
                                         _autostart(lv, dom), model)
                out.append(BoundDomain(dom.XMLDesc(0), info, native, why))
            except lv.libvirtError as exc:
                if exc.get_error_code() == lv.VIR_ERR_NO_DOMAIN:
                    continue  # undefined meanwhile, as the virsh path skips it
                raise
        return out
    finally:
        conn.close()


def _security_model(lv: Any, conn: Any) -> str | None:
    """The host's security model (virsh prints it in dominfo when there is one)."""
    try:
        model = conn.getSecurityModel()
    except lv.libvirtError as exc:
        if exc.get_error_code() == lv.VIR_ERR_NO_SUPPORT:
            return None
        raise
    return str(model[0]) if model and model[0] else None


def _autostart(lv: Any, dom: Any) -> int | None:
    try:
        return int(dom.autostart())
    except lv.libvirtError:
        return None  # virsh prints no Autostart line then


def _with_timeout(fn: Callable[[], T], timeout: float) -> T:
    """``fn()`` in a daemon thread; its result or exception, or :class:`StateError` at the
    timeout (the thread is left behind)."""
    box: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            box.append((True, fn()))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, raised there
            box.append((False, exc))

    worker = threading.Thread(target=run, name="state-libvirt", daemon=True)
    worker.start()
    worker.join(timeout)
    if not box:
        raise StateError(f"libvirt: timed out after {timeout:g} s")
    ok, value = box[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]
