"""ABRT's oops hash (docs/formats/libreport.md §5.6) and the Kerneloops helper elements."""

from __future__ import annotations

import hashlib
from pathlib import Path

from collectors.oops.koops_hash import (abrt_crash_function, abrt_duphash, abrt_hash_text, abrt_kernel_version,
                                        abrt_reason)
from collectors.oops.taint import abrt_tainted_long, abrt_tainted_short, taint_meanings, tainted_letters

# satyr tests/kerneloopses/rhbz-827868 is not in our fixtures; this text is built from the frame list
# satyr's tests/python/koops.py gives for it (a WARNING in __alloc_pages_nodemask reached from
# pskb_expand_head), in the 2012 x86_64 layout, with an unreliable frame as real traces have.
RHBZ_827868 = """WARNING: at mm/page_alloc.c:2204 __alloc_pages_nodemask+0x231/0x8f0()
Hardware name: Latitude E6420
Modules linked in: tcp_lp fuse ebtable_nat
Pid: 1181, comm: kworker/u:3 Not tainted 3.3.7-1.fc16.x86_64 #1
Call Trace:
 [<ffffffff8105782f>] warn_slowpath_common+0x7f/0xc0
 [<ffffffff8105788a>] warn_slowpath_null+0x1a/0x20
 [<ffffffff81121df1>] __alloc_pages_nodemask+0x231/0x8f0
 [<ffffffff81158a73>] alloc_pages_current+0xa3/0x110
 [<ffffffff811202ce>] __get_free_pages+0xe/0x50
 [<ffffffff8115e78e>] ? kmalloc_order_trace+0x1e/0x60
 [<ffffffff8115e78e>] kmalloc_order_trace+0x3e/0xc0
 [<ffffffff81161f9d>] __kmalloc+0x17d/0x190
 [<ffffffff814e9b82>] pskb_expand_head+0x82/0x2d0
 [<ffffffffa0412dcf>] ieee80211_skb_resize+0x5f/0x100 [mac80211]
"""


def test_satyr_rhbz_827868_vectors() -> None:
    # ABRT (no normalisation): warn_slowpath_* stay, the 7th and later frames do not count.
    assert abrt_hash_text(RHBZ_827868) == ("warn_slowpath_common\nwarn_slowpath_null\n__alloc_pages_nodemask\n"
                                           "alloc_pages_current\n__get_free_pages\nkmalloc_order_trace\n")
    assert abrt_duphash(RHBZ_827868) == "834a73653b9674928e91cd06f90c72c89fdb9ef7"
    # satyr's own test (compat + normalisation) expects this text and hash.
    assert abrt_hash_text(RHBZ_827868, normalize=True) == (
        "__alloc_pages_nodemask\nalloc_pages_current\n__get_free_pages\nkmalloc_order_trace\n__kmalloc\npskb_expand_head\n")
    assert abrt_duphash(RHBZ_827868, normalize=True) == "5718b3a86c64e7bed5e8ead08ae3084e447ddbee"
    assert abrt_duphash(RHBZ_827868) == hashlib.sha1(abrt_hash_text(RHBZ_827868).encode()).hexdigest()


def test_rip_line_is_frame_zero() -> None:
    text = ("general protection fault: 0000 [#1] SMP\n"
            "RIP: 0010:[<ffffffff81173f56>]  [<ffffffff81173f56>] fget_light+0x96/0xe0\n"
            "Call Trace:\n [<ffffffff81172bb8>] sys_read+0x28/0x90\n"
            "RIP  [<ffffffff81173f56>] fget_light+0x96/0xe0\n")
    assert abrt_hash_text(text) == "fget_light\nsys_read\n"
    assert abrt_reason(text) == "general protection fault in fget_light"
    modern = "BUG: kernel NULL pointer dereference, address: 0\nRIP: 0010:foo+0x1/0x2 [bar]\nCall Trace:\n baz+0x3/0x4\n"
    assert abrt_hash_text(modern) == "foo\nbaz\n"


def test_no_reliable_frame_no_hash() -> None:
    assert abrt_duphash("BUG: x\nCall Trace:\n [<c0403c76>] ? syscall_call+0x7/0xb\n") is None


def test_crash_function_normalisation_and_reason() -> None:
    assert abrt_crash_function(RHBZ_827868) == "__alloc_pages_nodemask"
    assert abrt_reason(RHBZ_827868) == "WARNING: at mm/page_alloc.c:2204 __alloc_pages_nodemask+0x231/0x8f0()"
    text = ("BUG: unable to handle kernel paging request at ffff\nIP: x\nCall Trace:\n"
            " [<ffffffffa0>] nmi_handle.isra.0+0x59/0x90 [mymod]\n")
    assert abrt_reason(text) == "kernel paging request at nmi_handle [mymod]"


def test_kernel_version_extraction(fixtures_dir: Path) -> None:
    assert abrt_kernel_version("Pid: 1, comm: x Not tainted 3.3.7-1.fc16.x86_64 #1\n") == "3.3.7-1.fc16.x86_64"
    assert abrt_kernel_version("Pid: 8003, comm: Xorg Not tainted (2.6.27.9-159.fc10.i686 #1)\n") == "2.6.27.9-159.fc10.i686"
    assert abrt_kernel_version("no version here\n") == ""
    text = (fixtures_dir / "abrt-oops" / "oops-kernel-3.x.x").read_text(errors="replace")
    assert abrt_kernel_version(text).startswith("3.")


def test_taint_rules(fixtures_dir: Path) -> None:
    d = fixtures_dir / "abrt-oops"
    load = lambda n: (d / n).read_text(errors="replace").replace(":HOSTNAME:", "host")  # noqa: E731
    assert abrt_tainted_short(load("koops-tainted-bg1")) == "GB"
    assert abrt_tainted_short(load("koops-tainted-g.template")) == "G"  # G alone counts
    assert abrt_tainted_short(load("koops-tainted-insane.template")) == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert abrt_tainted_short(load("koops-tainted-spaces")) == ""
    assert abrt_tainted_short("Pid: 1, comm: x Not tainted 3.1 #1") is None
    long = abrt_tainted_long("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    letters = [ln.split(" - ")[0] for ln in long.splitlines()]
    assert not set(letters) & set("GHJQVYZ") and "P" in letters and "W" in letters
    assert abrt_tainted_long("GB") == "B - Bad page referenced or unexpected page flags.\n"
    assert tainted_letters("CPU: 0 PID: 1 Comm: x Tainted: G      D   W  4.0.3 #1") == "GDW"
    assert taint_meanings("PO")["O"].startswith("externally-built")
