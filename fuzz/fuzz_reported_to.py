"""Fuzz reporter.reported_to: parse, find, format and append ``reported_to`` records.

Input: a ``reported_to`` element as bytes (decoded as libreport does, UTF-8 with U+FFFD).

Contract checked (docs/internal-apis.md "reporter.reported_to"; the module's docstrings):

* ``parse``, ``parse_line`` and ``find`` never raise (malformed lines are skipped);
* ``format_result`` raises only ``ValueError``, and a record it formats parses back equal
  (the format is its own inverse);
* ``append_line`` raises ``ValueError`` only for a line with a newline; otherwise it returns
  ``None`` exactly when the line is already present, else a text whose lines contain it;
* hangs (libFuzzer ``-timeout``) and memory growth (``-rss_limit_mb``) are crashes.

Seeds: the ``reported_to`` elements of the libreport/satyr fixture problem directories
(``$CRASHKIT_FIXTURES``), read in place.

Run: ``python3 fuzz/fuzz_reported_to.py [-max_total_time=300] [libFuzzer flags] [corpus dirs]``
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

with atheris.instrument_imports(include=["reporter"]):
    from reporter import reported_to  # noqa: E402
    from reporter.elements import load_text  # noqa: E402

TARGET = "reported_to"


def test_one(data: bytes) -> None:
    """One fuzz input."""
    text = load_text(data)
    results = reported_to.parse(text)
    for line in text.split("\n")[:64]:
        reported_to.parse_line(line)
    for result in results[:16]:
        assert reported_to.find(text, result.label) is not None
        try:
            line = reported_to.format_result(result)
        except ValueError as exc:
            assert str(exc)
            continue
        again = reported_to.parse_line(line)
        assert again == result, (line, again, result)
        updated = reported_to.append_line(text, line)
        if updated is None:
            assert line in text.split("\n")
        else:
            assert line in updated.split("\n")
            assert reported_to.append_line(updated, line) is None
    first = text.split("\n", 1)[0]
    try:
        reported_to.append_line(text, text)
    except ValueError:
        assert "\n" in text
    reported_to.append_line(text, first)


def seeds() -> Iterator[bytes]:
    """Every ``reported_to`` of the fixtures."""
    for path in _common.fixture_files("", ("reported_to",)):
        yield path.read_bytes()
    yield (b"Bugzilla: URL=https://bugzilla.example/1 BTHASH=abc\n"
           b"uReport: TIME=2024-01-02-03:04:05 WORKFLOW=x MSG=some text\n")


if __name__ == "__main__":
    _common.run(TARGET, test_one, seeds)
