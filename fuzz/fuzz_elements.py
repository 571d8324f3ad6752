"""Fuzz reporter.elements: libreport's pure element rules over arbitrary bytes.

Input: the contents of an element (or a name, a number, a date, a /proc cmdline).

Contract checked (docs/internal-apis.md "reporter.elements"; the module's docstrings):

* ``load_text``, ``parse_number``, ``parse_iso_date``, ``is_text``, ``quote_arg``,
  ``format_cmdline``, ``format_environ``, ``format_args`` and ``is_valid_element_name``
  never raise, for any bytes (names also as surrogate-escaped strings);
* ``parse_number`` gives ``None`` or ``0 <= n < 2**63 - 1``, and ``format_number`` of it parses back;
* ``parse_iso_date`` gives ``None`` or an int that ``iso_date`` formats back to a date that
  parses to the same int;
* ``load_text`` output has no control characters other than whitespace;
* a quoted argument has no space, control byte or NUL outside its quotes;
* hangs (libFuzzer ``-timeout``) and memory growth (``-rss_limit_mb``) are crashes.

Seeds: every element file of the libreport/satyr fixture problem directories
(``$CRASHKIT_FIXTURES``), read in place.

Run: ``python3 fuzz/fuzz_elements.py [-max_total_time=300] [libFuzzer flags] [corpus dirs]``
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

with atheris.instrument_imports(include=["reporter"]):
    from reporter import elements  # noqa: E402

TARGET = "elements"
ALLOWED_CONTROL = set("\t\n\v\f\r")


def test_one(data: bytes) -> None:
    """One fuzz input."""
    text = elements.load_text(data)
    assert not any(ord(c) < 0x20 and c not in ALLOWED_CONTROL for c in text), text
    number = elements.parse_number(data)
    if number is not None:
        assert 0 <= number < elements.MAX_TIME_T
        assert elements.parse_number(elements.format_number(number)) == number
    str_data = data.decode("utf-8", "surrogateescape")
    elements.parse_number(str_data)
    when = elements.parse_iso_date(str_data)
    if when is not None:
        assert elements.parse_iso_date(elements.iso_date(when)) == when
    elements.is_text(data)
    elements.is_text(data, len(data) * 4096)
    elements.is_valid_element_name(str_data)
    elements.is_valid_element_name(data.decode("latin-1"))
    quoted = elements.quote_arg(data)
    if quoted != data:
        assert quoted.startswith(b"'") and quoted.endswith(b"'") and len(quoted) >= 2
        assert not any(b < 0x20 or b >= 0x7F for b in quoted), quoted
    elements.format_cmdline(data)
    elements.format_environ(data)
    elements.format_args(data.split(b"\n"), b"\n")


def seeds() -> Iterator[bytes]:
    """Fixture elements, read in place (the big binary ones cut to their first 4 KiB)."""
    for sub in ("libreport-sample-problem", "libreport-sample-problems", "satyr-problem-dir"):
        for path in _common.fixture_files(sub):
            with path.open("rb") as f:
                yield f.read(4096)
    yield b"2024-01-02-03:04:05"


if __name__ == "__main__":
    _common.run(TARGET, test_one, seeds)
