"""Fuzz coripper.unwinder.inline.parse_aranges: the ``.debug_aranges`` index of the inline-info reader.

Input: the bytes of a ``.debug_aranges`` section.

Contract checked (coripper/unwinder/inline.py: "Bad or missing DWARF gives empty answers, never an
exception"; ``parse_aranges``: "Stops quietly at the first malformed set"):

* ``parse_aranges`` never raises (no exception type allowed);
* it returns two lists of the same length, the starts sorted, each range non-empty;
* hangs (libFuzzer ``-timeout``) and memory growth (``-rss_limit_mb``) are crashes.

Seeds: ``.debug_aranges`` of tests/programs/crasher.c built with ``-g`` and of host files
that have one.

Run: ``python3 fuzz/fuzz_aranges.py [-max_total_time=300] [libFuzzer flags] [corpus dirs]``
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

with atheris.instrument_imports(include=["coripper"]):
    from coripper.unwinder.inline import parse_aranges  # noqa: E402

TARGET = "aranges"


def test_one(data: bytes) -> None:
    """One fuzz input."""
    starts, ends = parse_aranges(data)
    assert len(starts) == len(ends)
    assert starts == sorted(starts)
    for start, (end, _cu) in zip(starts, ends, strict=True):
        assert end > start


def seeds() -> Iterator[bytes]:
    """``.debug_aranges`` sections of crasher.c builds and host ELF files."""
    from elftools.elf.elffile import ELFFile

    files = [p for p in (_common.build_program("crasher-pie", ["-g", "-O1", "-fPIE", "-pie"]),
                         _common.build_program("crasher-O0-aranges", ["-g", "-O0", "-gdwarf-4"]))
             if p is not None]
    for path in files + _common.host_elf_files(6):
        try:
            with path.open("rb") as f:
                sec = ELFFile(f).get_section_by_name(".debug_aranges")
                if sec is not None:
                    yield sec.data()[:8192]
        except Exception:  # noqa: BLE001 - a host file pyelftools cannot read is no seed
            continue


if __name__ == "__main__":
    _common.run(TARGET, test_one, seeds)
