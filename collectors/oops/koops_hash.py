"""ABRT's kernel-oops hash and helper elements (docs/formats/libreport.md §5.3, §5.6, §5.7).

The hash is satyr's koops duphash as ABRT calls it: no normalisation, "koops compat",
at most 6 frames: the first ``RIP:``/``EIP:`` line becomes frame 0, unreliable (``?``)
and address-only frames are skipped, and the SHA-1 is taken over the function names,
each followed by a newline.
"""

from __future__ import annotations

import hashlib
import re

from collectors.oops.frames import KernelFrame, parse_frame, parse_ip_line

MAX_HASH_FRAMES = 6
_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s*")
_IP_LINE = re.compile(r"^(?:RIP|EIP):")

# satyr's koops normalisation (lib/normalize.c): frames without a module named like this go.
_NORMALIZE_DROP = frozenset({
    "do_softirq", "do_vfs_ioctl", "dump_stack", "flush_kthread_worker", "gs_change", "irq_exit",
    "kernel_thread_helper", "kthread", "process_one_work", "system_call_fastpath",
    "warn_slowpath_common", "warn_slowpath_fmt", "warn_slowpath_fmt_taint", "warn_slowpath_null",
    "worker_thread",
})


def koops_frames(text: str) -> list[KernelFrame]:
    """Frames of an oops text the way satyr's koops parser sees them (IP frame first)."""
    frames: list[KernelFrame] = []
    ip_frame: KernelFrame | None = None
    for raw in text.splitlines():
        line = _TIMESTAMP.sub("", raw.strip())
        if not line:
            continue
        if line.startswith("Last Breaking-Event-Address:"):
            break
        if line.startswith("Modules linked in:"):
            continue
        if _IP_LINE.match(line):
            if ip_frame is None:
                ip_frame = parse_ip_line(line)
            continue
        frame = parse_frame(line)
        if frame is not None and not _is_inline(frame, line):
            frames.append(frame)
    return ([ip_frame] if ip_frame is not None else []) + frames


def _is_inline(frame: KernelFrame, line: str) -> bool:
    # satyr does not know symbolised "func file:line [inline]" frames.
    return frame.offset is None and line.endswith("[inline]")


def abrt_hash_text(text: str, *, normalize: bool = False) -> str:
    """The text ABRT hashes: up to 6 reliable frame names, each followed by a newline.

    ``normalize`` applies satyr's koops normalisation first (satyr's own test vectors use it;
    ABRT's Kerneloops hash does not).
    """
    out = []
    for frame in (_normalized_frames(text) if normalize else koops_frames(text)):
        if not frame.reliable:
            continue
        if frame.function:
            out.append(frame.function + "\n")
        elif frame.address is not None:
            out.append(f"0x{frame.address:x}\n")
        else:
            continue
        if len(out) == MAX_HASH_FRAMES:
            break
    return "".join(out)


def abrt_duphash(text: str, *, normalize: bool = False) -> str | None:
    """ABRT's ``duphash``/``uuid`` of an oops text; None when no reliable frame exists."""
    hashed = abrt_hash_text(text, normalize=normalize)
    if not hashed:
        return None
    return hashlib.sha1(hashed.encode("utf-8", "surrogateescape")).hexdigest()


def _normalized_frames(text: str) -> list[KernelFrame]:
    frames = []
    for frame in koops_frames(text):
        if not frame.function:
            continue
        name = frame.function.split(".", 1)[0]
        if frame.module is None and name in _NORMALIZE_DROP:
            continue
        frames.append(KernelFrame(name, frame.offset, frame.size, frame.module, frame.reliable, frame.address))
    return frames


def _first_normalized(text: str) -> KernelFrame | None:
    frames = _normalized_frames(text)
    reliable = [f for f in frames if f.reliable]
    if reliable:
        return reliable[0]
    return frames[0] if frames else None


def abrt_crash_function(text: str) -> str | None:
    """ABRT's ``crash_function``: the first frame after satyr's koops normalisation."""
    frame = _first_normalized(text)
    return frame.function if frame else None


def abrt_reason(text: str) -> str:
    """ABRT's ``reason`` element for an oops text (§5.7)."""
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if "general protection fault: " in first or "kernel paging request at" in first:
        frame = _first_normalized(text)
        func = frame.function if frame and frame.function else "<unknown>"
        what = "general protection fault" if "general protection fault: " in first else "kernel paging request"
        reason = f"{what} in {func}" if what.startswith("general") else f"{what} at {func}"
        if frame and frame.module:
            reason += f" [{frame.module}]"
        return reason
    return first


# §5.3 step 5: "[ (]|kernel-" + N.N.N(.x)*-<non-space/)> + optional ")" + " #".
_ABRT_VERSION = re.compile(r"(?:[ (]|kernel-)(\d+\.\d+\.\d+(?:\.\S+?)?-[^\s)]+)\)? #")
_ABRT_VERSION_LINE = re.compile(r"Pid|comm|CPU|REGS|EFLAGS")


def abrt_kernel_version(text: str) -> str:
    """ABRT's kernel version of an oops text ("" when no line carries one)."""
    for line in text.splitlines():
        if _ABRT_VERSION_LINE.search(line):
            m = _ABRT_VERSION.search(line)
            if m:
                return m.group(1)
    return ""
