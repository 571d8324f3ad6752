"""``crashkit oops scan --json`` prints what ``json.dump(..., indent=2)`` would, byte for byte.

The CLI writes the array itself (the standard library's indenting encoder is pure Python and
was a fifth of a crash-dense scan); the oracle here is the standard library on the same
reports, from real logs (ABRT's examples) and from values of every JSON type.
"""

from __future__ import annotations

import io
import json

import pytest
from testlib import FIXTURES

from collectors.oops.cli import _indented, write_json
from collectors.oops.parse import scan_stream

ABRT = sorted(p for p in (FIXTURES / "abrt-oops").iterdir() if p.is_file())


def _stdlib(reports: list) -> str:
    out = io.StringIO()
    json.dump([r.to_json_dict() for r in reports], out, indent=2)
    return out.getvalue() + "\n"


@pytest.mark.parametrize("path", ABRT, ids=lambda p: p.name)
def test_reports_of_real_logs_print_as_the_stdlib_prints_them(path):
    with path.open("rb") as fp:
        reports = list(scan_stream(fp))
    out = io.StringIO()
    write_json(reports, out)
    assert out.getvalue() == _stdlib(reports)


def test_no_reports():
    out = io.StringIO()
    write_json([], out)
    assert out.getvalue() == _stdlib([])


@pytest.mark.parametrize("value", [
    None, True, False, 0, -7, 2**70, "", "caf\u00e9 \"q\" \\ \n\t\x00\u2028", [], {}, [None, [1, [True]]],
    {"a": {"b": [], "c": {}}, "é": [{"x": "y"}]}, 1.5,
])
def test_every_json_type(value):
    assert _indented(value, "") == json.dumps(value, indent=2)
