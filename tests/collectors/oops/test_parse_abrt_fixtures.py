"""ABRT's own oops-extractor test logs (abrt/abrt tests/examples, read in place from the shared
fixtures): we must find the same reports, with the same first line and the same hash."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from collectors.oops.koops_hash import abrt_duphash, abrt_hash_text, koops_frames
from collectors.oops.parse import scan_text

# .test (or .test.template) logs that come with the .right file abrt-dump-oops -o must produce.
PAIRS = [
    "cut_here", "debug_messages", "kernel_panic_oom", "mce1", "mce2", "nmi_oops", "nmi_oops_hash",
    "not_oops1", "not_oops2", "oops-32bit-graphics", "oops-kernel-panic-hung-tasks-arm",
    "oops-module-nouveau", "oops-with-jiffies", "oops-without-addrs", "oops1", "oops10_s390x", "oops2",
    "oops3", "oops5", "oops6", "oops7", "oops8_ppc64", "oops9_ppc64", "oops_broken_bios",
    "oops_no_reliable_frame", "oops_recursive_locking1", "oops_unsupported_hw",
]

# Where we deliberately differ from abrt-dump-oops: name -> (our count, reason).
COUNT_DIFFERS = {
    # ABRT drops everything before its own "Reported N kernel oopses to Abrt" syslog line, so a
    # second scan of the same syslog does not re-report. That is ABRT's replacement for a cursor;
    # our sources keep a cursor per source instead and the parser reports what the log holds.
    "not_oops2": 1,
    # Two identical ALSA "BUG:" lines seconds apart: ABRT keeps one per scan; we report each
    # occurrence (the Kerneloops writer dedups by duphash and bumps `count`).
    "oops7": 2,
}
FIRST_LINE_DIFFERS = {
    # ABRT starts at "traps: chrome[2979] trap invalid opcode ...", a user-space trap message
    # (arch/x86/kernel/traps.c do_trap), which we do not treat as a kernel report; ours starts at
    # the warn_alloc() "page allocation failure" report that follows.
    "oops6": "chrome: page allocation failure: order:5, mode:0x24040c0(GFP_KERNEL|__GFP_COMP)",
}


def load(path: Path) -> str:
    text = path.read_bytes().decode("utf-8", "replace")
    return text.replace(":FULL_HOSTNAME:", "host.example.com").replace(":HOSTNAME:", "host")


def find_test(fixtures: Path, name: str) -> Path:
    for cand in (fixtures / "abrt-oops" / f"{name}.test", fixtures / "abrt-oops" / f"{name}.test.template"):
        if cand.exists():
            return cand
    raise AssertionError(f"no test log for {name}")


def parse_right(text: str) -> list[tuple[str, str]]:
    """(version, oops text) per oops of an ``abrt-dump-oops -o`` output."""
    oopses: list[list[str]] = []
    for line in text.split("\n"):
        if line.startswith("Version: "):
            oopses.append([line[len("Version: "):]])
        elif oopses and line:
            oopses[-1].append(line)
    return [(o[0], "\n".join(o[1:]) + "\n") for o in oopses]


@pytest.mark.parametrize("name", PAIRS)
def test_same_reports_as_abrt(fixtures_dir: Path, name: str) -> None:
    log = load(find_test(fixtures_dir, name))
    right = parse_right(load(fixtures_dir / "abrt-oops" / f"{name}.right"))
    ours = scan_text(log)
    assert len(ours) == COUNT_DIFFERS.get(name, len(right)), [r.title for r in ours]
    if name in COUNT_DIFFERS:
        return
    for report, (version, abrt_text) in zip(ours, right, strict=True):
        abrt_first = abrt_text.splitlines()[0].strip()
        assert report.text.splitlines()[0].strip() == FIRST_LINE_DIFFERS.get(name, abrt_first)
        assert report.duphash == abrt_duphash(abrt_text)
        if version and name != "oops6":  # oops6.right was made from an older copy of the log
            assert report.kernel_version == version


@pytest.mark.parametrize("name", ["oops_no_reliable_frame"])
def test_no_reliable_frame_gives_no_hash(fixtures_dir: Path, name: str) -> None:
    (report,) = scan_text(load(find_test(fixtures_dir, name)))
    assert report.duphash is None  # every frame, the EIP one included, is "?"-unreliable


@pytest.mark.parametrize("a,b", [
    ("hash-gen-oops6.right", "hash-gen-same-as-oops6.right"),
    ("oops4.right", "oops-same-as-oops4.right"),
])
def test_abrt_equal_hash_pairs(fixtures_dir: Path, a: str, b: str) -> None:
    ha = abrt_duphash(load(fixtures_dir / "abrt-oops" / a))
    hb = abrt_duphash(load(fixtures_dir / "abrt-oops" / b))
    assert ha is not None and ha == hb


def test_nmi_oops_hash_test_equals_right(fixtures_dir: Path) -> None:
    (report,) = scan_text(load(fixtures_dir / "abrt-oops" / "nmi_oops_hash.test"))
    (_, right_text), = parse_right(load(fixtures_dir / "abrt-oops" / "nmi_oops_hash.right"))
    assert report.duphash == abrt_duphash(right_text) is not None


@pytest.mark.parametrize("name,count", [
    ("10_oopses.test", 10), ("1_oops.test", 1), ("no_oops.test", 0), ("not_oops1.test", 0),
    ("xorg_journal_crash1.test", 0), ("xorg_journal_crash2.test", 0),
    ("oops-module-ati.test", 1), ("oops-module-intel.test", 1), ("oops-module-qxl.test", 1),
    ("oops1-module-nouveau.test", 1),
])
def test_counts_of_logs_without_right(fixtures_dir: Path, name: str, count: int) -> None:
    # no_oops.test is a bare call trace without any report headline: not a report.
    assert len(scan_text(load(fixtures_dir / "abrt-oops" / name))) == count


def test_abrt_hash_frames_of_oops4(fixtures_dir: Path) -> None:
    text = load(fixtures_dir / "abrt-oops" / "oops4.right")
    # Unreliable "? alloc_ioapic_entries" is skipped; six reliable names, in order.
    assert abrt_hash_text(text) == (
        "__might_sleep\n__kmalloc\nalloc_ioapic_entries\nlapic_resume\n__sysdev_resume\nsysdev_resume\n"
    )
    assert abrt_duphash(text) == hashlib.sha1(abrt_hash_text(text).encode()).hexdigest()
    assert koops_frames(text)[0].function == "__might_sleep"
