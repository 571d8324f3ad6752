"""Load shedding: in a crash storm, count every crash, keep cores only as far as the host bears.

At most ``max_full_hooks`` hooks capture fully at once (``flock``-ed slot files in the spool's
state directory). A hook that finds every slot taken counts its crash from the ``/proc``
snapshot it already took, drains the core to ``/dev/null`` (splice) and exits: no minimizing,
no unwinding, no post-processing. The count goes, under the spool lock, to the directory of
the same program (uid, executable, signal, container: the ``crash_signature_proc`` element
that every full capture writes too), or to a minimal directory of its own, which says that it
holds no core and why.

Every directory counts its occurrences in ``count``; ``counted_without_core`` says how many of
them the hook never read a core for (shed here, refused by the kernel, see
:mod:`.refusals`), so that a reader knows how much of a count is backed by an analysed core.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from collectors.corehook import dedup, gate, hooklog, limits
from collectors.corehook.coredump import drain_fd, release_stdin
from collectors.corehook.ccpp_elements import TYPE
from reporter import elements
from reporter.dumpdir import DumpDir
from reporter.errors import ProblemDirError

if TYPE_CHECKING:
    from collections.abc import Callable

    from collectors.corehook.capture import Crash, Outcome
    from collectors.corehook.config import HookConfig
    from collectors.corehook.container import ContainerInfo

#: Slot files ``hook-run.N`` in ``<spool>/.crashkit-hook`` (taken first by :mod:`.gate`).
SLOT_PREFIX = gate.SLOT_PREFIX
WITHOUT_CORE_ELEMENT = dedup.WITHOUT_CORE_ELEMENT
PROC_SIGNATURE_ELEMENT = "crash_signature_proc"


def acquire_full_slot(spool: str, slots: int) -> int | None:
    """A held slot for a full capture (close the fd, or exit, to give it back); ``None``
    when *slots* hooks already capture. An unusable state directory sheds nothing (-1)."""
    if slots <= 0:
        return -1
    try:
        dfd = limits.open_state_dir(spool)
    except OSError as exc:
        hooklog.log(f"hook slots unusable, no load shedding: {exc}", error=True)
        return -1
    try:
        return limits.try_slot(dfd, SLOT_PREFIX, slots)
    except OSError as exc:
        hooklog.log(f"hook slots unusable, no load shedding: {exc}", error=True)
        return -1
    finally:
        os.close(dfd)


#: Seconds the first crash of a program waits for a full-capture slot before it is shed: its
#: core is the one worth keeping (later occurrences count into its directory).
FIRST_CRASH_WAIT = gate.FIRST_CRASH_WAIT
_POLL = 0.05


def slot_for_first_crash(spool: str, slots: int, key: str, wait: float = FIRST_CRASH_WAIT) -> int | None:
    """When no directory of this program (*key*) exists yet, wait up to *wait* seconds for a
    full-capture slot; ``None`` when it is known already or no slot freed up."""
    import time

    if dedup.find_duplicate(spool, key, element=PROC_SIGNATURE_ELEMENT) is not None:
        return None
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        time.sleep(_POLL)
        slot = acquire_full_slot(spool, slots)
        if slot is not None:
            return slot
    return None


def proc_key(crash: Crash, container: ContainerInfo) -> str:
    """The duplicate key that /proc alone gives: uid, executable, signal, container (pure)."""
    return dedup.duplicate_key(crash.uid, TYPE, crash.exe or "",
                               dedup.container_key(container.container, container.container_id),
                               dedup.proc_signature(crash.shown, crash.args.signal))


def count_without_core(spool: str, key: str, when: float, why: str, name: str,
                       make: Callable[[], dict[str, bytes]], *,
                       element: str = PROC_SIGNATURE_ELEMENT, by: int = 1) -> tuple[str, int]:
    """Count *by* occurrences without a core: in the oldest directory whose *element* is
    *key*, else in a new minimal directory built from *make* (named *name*). Returns
    (directory, its count). Runs under the spool's dedup lock."""
    with limits.SpoolLock(spool, on_error=lambda exc: hooklog.log(
            f"dedup lock unusable, duplicates may race: {exc}", error=True)):
        target = dedup.find_duplicate(spool, key, element=element)
        if target is not None:
            return target, dedup.bump(target, when, by=by, without_core=by)
        elems = make()
        elems["reason"] = elems.get("reason", b"") + f" (no core: {why})".encode()
        elems[WITHOUT_CORE_ELEMENT] = elements.format_number(by)
        elems["count"] = elements.format_number(by)
        if by > 1:
            elems["last_occurrence"] = elements.format_number(int(when))
        elems[element] = key.encode()
        dd = DumpDir.create(spool, name, owner_uid=int(elems.get("uid", b"0") or 0), uid=0, gid=0,
                            mode=0o640)
        try:
            for element, value in elems.items():
                dd.save_bytes(element, value)
            path = dd.commit()
        except BaseException:
            dd.discard()
            raise
        dd.close()
        return path, 1


def _fold_into(dd: DumpDir, other: str) -> int:
    """Add *other*'s occurrences to *dd* and delete it, when none of them had a core read
    (``counted_without_core`` = ``count``); returns how many came along (0: left alone)."""
    with DumpDir.open(other, wait=True, timeout=dedup.BUMP_TIMEOUT) as odd:
        count = odd.count() or 1
        without = odd.load_int(WITHOUT_CORE_ELEMENT) or 0
        if without < count:
            return 0
        first, mine = odd.time(), dd.time()
        if first is not None and mine is not None and first < mine:
            dd.save_int("time", first)
        dd.save_int("count", (dd.count() or 1) + count)
        dd.save_int(WITHOUT_CORE_ELEMENT, (dd.load_int(WITHOUT_CORE_ELEMENT) or 0) + without)
        odd.delete()
    return count


def absorb_coreless(spool: str, key: str, dd: DumpDir) -> int:
    """Fold the directories that only counted this program without a core (same
    ``crash_signature_proc`` *key*, no core of their own) into *dd*, the new directory of a
    full capture, before it is committed; returns how many occurrences came along. Runs
    under the spool's dedup lock."""
    absorbed = 0
    skip: list[str] = []
    while True:
        other = dedup.find_duplicate(spool, key, element=PROC_SIGNATURE_ELEMENT, skip=skip)
        if other is None:
            return absorbed
        skip.append(other)
        if any(os.path.lexists(os.path.join(other, name)) for name in ("coredump", "coredump.zst")):
            continue  # a full directory (checked before its lock is waited for)
        try:
            count = _fold_into(dd, other)
        except (ProblemDirError, OSError) as exc:  # locked by a reporter, gone: leave it be
            hooklog.log(f"could not take over the occurrences counted in {other}: {exc}", error=True)
            continue
        absorbed += count


def shed(crash: Crash, cfg: HookConfig, container: ContainerInfo,
         make_elements: Callable[[], dict[str, bytes]], stdin_fd: int) -> Outcome:
    """The storm path: drain the core unread, count the crash (module docstring)."""
    from collectors.corehook.capture import Outcome

    drain_fd(stdin_fd)
    if stdin_fd == 0:
        release_stdin()
    why = f"load shedding, {cfg.max_full_hooks} hooks already capturing"
    name = f"ccpp-{elements.iso_date(crash.args.time)}-{crash.args.global_pid}"
    path, count = count_without_core(cfg.spool, proc_key(crash, container), crash.args.time, why,
                                     name, make_elements)
    hooklog.log(crash.line(f"counted without core in {path} (count {count}; {why})"))
    return Outcome("shed", why, path)
