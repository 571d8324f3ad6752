"""Fuzz coripper.unwinder.inline.DwarfIndex: inline chains, function names and call sites from DWARF.

Input: an ELF file with DWARF (the seeds are tests/programs/crasher.c built with ``-g``).

Contract checked (coripper/unwinder/inline.py: "Bad or missing DWARF gives empty answers, never an
exception"):

* opening the DWARF with pyelftools may raise anything (``index_for`` catches every
  exception there and uses no inline info), so the harness stops quietly then;
* once a ``DwarfIndex`` exists, ``inline_chain``, ``function_name``, ``function_entry``,
  ``call_site_target`` and ``tail_call_sites`` never raise, for any pc;
* hangs (libFuzzer ``-timeout``) and memory growth (``-rss_limit_mb``) are crashes.

Seeds: crasher.c at -O0, -O1 and -O2 with ``-g`` (DWARF 5 and 4).

Run: ``python3 fuzz/fuzz_inline_dwarf.py [-max_total_time=300] [libFuzzer flags] [corpus dirs]``
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

with atheris.instrument_imports(include=["coripper"]):
    from coripper.unwinder.inline import DwarfIndex  # noqa: E402

TARGET = "inline_dwarf"
# Link-time pcs of the crasher's .text (PIE, starting near 0x1000) and a few outside it.
PCS = (0x1100, 0x1139, 0x1189, 0x11F0, 0x1209, 0x1215, 0x1230, 0x1290, 0x1300, 0x1400, 0, (1 << 64) - 1)


def open_dwarf(data: bytes) -> Any:
    """pyelftools' DWARF of ``data`` as coripper.unwinder.inline opens it, or None."""
    from elftools.elf.elffile import ELFFile

    try:
        elf = ELFFile(io.BytesIO(data))
        if elf.get_section_by_name(".debug_info") is None:
            return None
        return elf.get_dwarf_info(relocate_dwarf_sections=False, follow_links=False)
    except Exception:  # noqa: BLE001 - index_for() catches everything here too
        return None


def test_one(data: bytes) -> None:
    """One fuzz input."""
    dwarf = open_dwarf(data)
    if dwarf is None:
        return
    index = DwarfIndex(dwarf)
    for pc in PCS:
        index.inline_chain(pc)
        index.function_name(pc)
        entry = index.function_entry(pc)
        index.call_site_target(pc)
        if entry is not None:
            index.tail_call_sites(entry)


def seeds() -> Iterator[bytes]:
    """crasher.c with DWARF at three optimization levels."""
    for name, flags in (("crasher-pie", ["-g", "-O1", "-fPIE", "-pie"]),
                        ("crasher-O2-g", ["-g", "-O2"]),
                        ("crasher-O0-aranges", ["-g", "-O0", "-gdwarf-4"])):
        path = _common.build_program(name, flags)
        if path is not None:
            yield path.read_bytes()


if __name__ == "__main__":
    _common.run(TARGET, test_one, seeds)
