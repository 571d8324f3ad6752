"""Folding shed records into problem directories: the counting half of the light path.

:mod:`.gate` sheds a crash by writing one record (argv and a few ``/proc`` files) and draining
the core. One hook at a time (the holder of ``shed-fold.lock``) turns the records into counts:
per program (``crash_signature_proc``: uid, executable, signal, container) in the oldest
directory of that program, else in a minimal directory without a core
(:func:`.shedding.count_without_core`), ``counted_without_core`` raised by as many. Records of
crashes the hook would have ignored (its own, other signals, ``ignored_paths``) are logged and
dropped. A record is deleted only after its count is written: a folder killed in between
counts it twice rather than never.

The container of a folded crash comes from its cgroup path and namespaces only (the process
is gone by now, so its container init's environment cannot be asked): a crash whose runtime
only that environment names is counted in a directory of its own, not in the full capture's.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

from collectors.corehook import container as container_mod
from collectors.corehook import gate, hooklog, procsnap, shedding
from collectors.corehook.args import parse_args
from collectors.corehook.capture import Crash, crash_from_snapshot, why_not_ours
from collectors.corehook.ccpp_elements import basic_elements
from collectors.corehook.config import HookConfig, load_config
from collectors.errors import CollectorError
from reporter import elements

#: Records folded per pass, and seconds a folder keeps folding before it hands over.
BATCH = 500
FOLD_BUDGET = 120.0


def snapshot_of(fields: dict[str, bytes], pid: int) -> procsnap.ProcSnapshot:
    """The :class:`~.procsnap.ProcSnapshot` a shed record stands for (pure)."""
    snap = procsnap.ProcSnapshot(pid)
    for link in ("exe", "root", "cwd"):
        if link in fields:
            setattr(snap, link, os.fsdecode(fields[link]))
    for name in gate.RECORD_LIMITS:
        if name in fields:
            snap.files[name] = fields[name]
    if fields.get("own") == b"1":
        snap.files["environ"] = gate.MARKER_ENV + b"1\0"
    snap.namespaces = {ns: os.fsdecode(fields[f"ns.{ns}"]) if f"ns.{ns}" in fields else None
                       for ns in gate.NAMESPACES}
    if "gone" in fields:
        snap.gone = True
        snap.errors["."] = fields["gone"].decode("utf-8", "replace")
    return snap


class _Folded:
    """The crashes of one pass, grouped by their /proc key."""

    def __init__(self) -> None:
        self.groups: dict[str, list[tuple[Crash, container_mod.ContainerInfo, int]]] = {}
        self.done: list[str] = []


def _classify(cfg: HookConfig, state_fd: int, names: list[str], init_ns: dict[str, str | None]) -> _Folded:
    folded = _Folded()
    for name, fields in gate.records(state_fd, names):
        folded.done.append(name)
        if fields is None:
            hooklog.log(f"shed record {name}: unreadable, dropped", error=True)
            continue
        try:
            args = parse_args(os.fsdecode(fields.get("argv", b"")).split("\0"))
        except CollectorError as exc:
            hooklog.log(f"shed record {name}: {exc}", error=True)
            continue
        crash = crash_from_snapshot(args, snapshot_of(fields, args.global_pid))
        why = why_not_ours(crash, cfg)
        if why is not None:
            hooklog.log(crash.line(f"ignoring ({why})"))
            continue
        # The process is gone: the container comes from what the record kept (no ancestors).
        info = container_mod.detect(replace(crash.snap, gone=True), init_ns)
        slots = int(fields.get("slots", b"0") or 0)
        folded.groups.setdefault(shedding.proc_key(crash, info), []).append((crash, info, slots))
    return folded


def fold(cfg: HookConfig, state_fd: int, names: list[str]) -> int:
    """Count the crashes of the records *names*; returns how many were counted."""
    init_ns = procsnap.read_init_namespaces()
    folded = _classify(cfg, state_fd, names, init_ns)
    counted = 0
    for key, items in folded.groups.items():
        crash, info, slots = items[0]
        why = f"load shedding, {slots} hooks already capturing"
        name = f"ccpp-{elements.iso_date(crash.args.time)}-{crash.args.global_pid}"

        def make(crash: Crash = crash, info: container_mod.ContainerInfo = info) -> dict[str, bytes]:
            return basic_elements(crash.args, crash.snap, crash.exe, crash.uid, init_ns, info,
                                  crash.status)

        last = max(c.args.time for c, _, _ in items)
        path, count = shedding.count_without_core(cfg.spool, key, last, why, name, make, by=len(items))
        for n, (each, _, _) in enumerate(items):
            shown = count - len(items) + n + 1
            hooklog.log(each.line(f"counted without core in {path} (count {shown}; {why})"))
        counted += len(items)
    for name in folded.done:
        gate.remove_record(state_fd, name)
    return counted


def sweep_unfinished(state_fd: int, now: float | None = None, min_age: float = 60.0) -> list[str]:
    """Remove the temporary records of shedding hooks that died while writing one (a record
    is renamed into place whole, so one still unnamed after *min_age* seconds is orphaned)."""
    now = time.time() if now is None else now
    removed: list[str] = []
    try:
        sfd = os.open(gate.SHED_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                      dir_fd=state_fd)
    except FileNotFoundError:
        return removed
    try:
        for name in os.listdir(sfd):
            if not (name.startswith(".") and name.endswith(".tmp")):
                continue
            try:
                if now - os.stat(name, dir_fd=sfd, follow_symlinks=False).st_mtime >= min_age:
                    os.unlink(name, dir_fd=sfd)
                    removed.append(name)
            except FileNotFoundError:
                continue
    finally:
        os.close(sfd)
    return removed


def fold_while_pending(config: str, state_fd: int, lock: int) -> None:
    """Fold records while there are any (holding *lock*, ``shed-fold.lock``), then let go and
    look once more: a record written while the lock was held, by a hook that therefore did
    not fold it, is folded by this folder or by a hook that finds the lock free."""
    cfg = load_config(config)
    hooklog.setup(cfg.log_file)
    for name in sweep_unfinished(state_fd):
        hooklog.log(f"removed the unfinished shed record {name}")
    deadline = time.monotonic() + FOLD_BUDGET
    held: int | None = lock
    while held is not None:
        try:
            while time.monotonic() < deadline:
                names = gate.pending_records(state_fd)
                if not names:
                    break
                fold(cfg, state_fd, names[:BATCH])
        except Exception as exc:  # noqa: BLE001 - one log line; the records stay for later
            hooklog.log(f"folding shed records: {type(exc).__name__}: {exc}", error=True)
            return
        finally:
            os.close(held)
        if not gate.pending_records(state_fd) or time.monotonic() >= deadline:
            return
        held = gate.try_lock(state_fd, gate.FOLD_LOCK)
