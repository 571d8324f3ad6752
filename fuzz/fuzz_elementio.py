"""Fuzz reporter.elementio (through ``DumpDir``): reading hostile element files from disk.

Input: byte 0 picks an element (``time``, ``count``, ``last_occurrence``, ``reported_to``,
``type``, ``cmdline``, ``os_release``), the rest is written as that element's file in a real
problem directory (in a temporary spool), which is then opened read-only and read back.

Contract checked (docs/internal-apis.md "reporter.dumpdir"; reporter/elementio.py):

* ``DumpDir.open`` and the readers raise only ``ProblemDirError`` (a damaged ``time`` or
  ``type`` makes the directory invalid: that is the documented refusal);
* ``load_bytes`` returns the bytes written; ``load_text`` equals ``elements.load_text`` of them;
  ``load_int``/``time``/``count`` equal ``elements.parse_number`` of them;
  ``last_occurrence`` is ``None`` or ``>= time``; ``element_size`` is the length written;
* ``add_reported_to`` of a record line keeps the element parseable and the record present;
* hangs (libFuzzer ``-timeout``) and memory growth (``-rss_limit_mb``) are crashes.

Seeds: the elements of the libreport fixture problem directory (``$CRASHKIT_FIXTURES``), read
in place.

Run: ``python3 fuzz/fuzz_elementio.py [-max_total_time=300] [libFuzzer flags] [corpus dirs]``
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

with atheris.instrument_imports(include=["reporter"]):
    from reporter import elements, reported_to  # noqa: E402
    from reporter.dumpdir import DumpDir  # noqa: E402
    from reporter.errors import ProblemDirError  # noqa: E402

TARGET = "elementio"
NAMES = ("time", "count", "last_occurrence", "reported_to", "type", "cmdline", "os_release")
_DIR: list[str] = []


def problem_dir() -> str:
    """A committed problem directory in a temporary spool, made once per process."""
    if not _DIR:
        spool = tempfile.mkdtemp(prefix="crashkit-fuzz-spool-")
        dd = DumpDir.create(spool, "fuzz-0")
        dd.save_text("type", "CCpp")
        dd.set_time(1_700_000_000)
        _DIR.append(dd.commit())
        dd.close()
    return _DIR[0]


def read_back(path: str, name: str, data: bytes) -> None:
    """Open read-only and check every reader against the pure rules."""
    with DumpDir.open(path, readonly=True, wait=False) as dd:
        assert dd.load_bytes(name) == data
        assert dd.element_size(name) == len(data)
        assert dd.load_text(name) == elements.load_text(data)
        if name in ("time", "count", "last_occurrence"):
            assert dd.load_int(name) == elements.parse_number(data)
        first, last = dd.time(), dd.last_occurrence()
        assert last is None or first is None or last >= first
        dd.count()
        assert name in dd.list_elements()


def test_one(data: bytes) -> None:
    """One fuzz input."""
    name = NAMES[data[0] % len(NAMES)] if data else "reported_to"
    body = data[1:]
    path = problem_dir()
    with open(os.path.join(path, name), "wb") as f:
        f.write(body)
    try:
        try:
            read_back(path, name, body)
        except ProblemDirError as exc:
            assert str(exc)
            assert name in ("time", "type"), (name, exc)
            return
        if name == "reported_to":
            line = "Fuzz: URL=http://127.0.0.1/1 MSG=x"
            with DumpDir.open(path) as dd:
                dd.add_reported_to(line)
                text = dd.load_text("reported_to")
            assert reported_to.find(text, "Fuzz") is not None
    finally:
        with open(os.path.join(path, "type"), "wb") as f:
            f.write(b"CCpp")
        with open(os.path.join(path, "time"), "wb") as f:
            f.write(b"1700000000")


def seeds() -> Iterator[bytes]:
    """Fixture elements of the names above."""
    for sub in ("libreport-sample-problem", "libreport-sample-problems", "satyr-problem-dir"):
        for path in _common.fixture_files(sub):
            if path.name in NAMES:
                with path.open("rb") as f:
                    yield bytes([NAMES.index(path.name)]) + f.read(4096)


if __name__ == "__main__":
    _common.run(TARGET, test_one, seeds)
