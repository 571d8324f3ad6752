"""reported_to records (docs/formats/libreport.md §2)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reporter import reported_to
from reporter.reported_to import ReportResult

# The example of abrt's test data quoted in docs/formats/libreport.md §2 (hashes spelled out).
BTHASH = "072c77ed1b3b4d7b8b5b8c9c62cdb6e3a8a5a69b"
ABRT_EXAMPLE = (
    f"uReport: BTHASH={BTHASH}\n"
    f"ABRT Server: URL=https://retrace.fedoraproject.org/faf/reports/bthash/{BTHASH}\n"
    "Bugzilla: URL=https://bugzilla.redhat.com/show_bug.cgi?id=851210\n"
)


def test_parse_abrt_example() -> None:
    records = reported_to.parse(ABRT_EXAMPLE)
    assert records == [
        ReportResult(label="uReport", bthash=BTHASH),
        ReportResult(label="ABRT Server", url=f"https://retrace.fedoraproject.org/faf/reports/bthash/{BTHASH}"),
        ReportResult(label="Bugzilla", url="https://bugzilla.redhat.com/show_bug.cgi?id=851210"),
    ]
    # Formatting gives back the very same lines.
    assert "".join(r.format() + "\n" for r in records) == ABRT_EXAMPLE


def test_all_fields_in_order_and_msg_to_end_of_line() -> None:
    when = 1462970611
    stamp = time.strftime("%Y-%m-%d-%H:%M:%S", time.localtime(when))
    line = f"Bugzilla: TIME={stamp} URL=https://b/show_bug.cgi?id=1 BTHASH=ab WORKFLOW=workflow_Fedora MSG=a msg: URL=x  y"
    r = reported_to.parse_line(line)
    assert r == ReportResult("Bugzilla", when, "https://b/show_bug.cgi?id=1", "ab", "workflow_Fedora", "a msg: URL=x  y")
    assert r.format() == line
    # Any input order is formatted in libreport's order.
    shuffled = reported_to.parse_line("Bugzilla: MSG=m")
    assert shuffled == ReportResult("Bugzilla", msg="m")
    r2 = reported_to.parse_line(f"x:   WORKFLOW=w   BTHASH=b URL=u TIME={stamp}")
    assert r2.format() == f"x: TIME={stamp} URL=u BTHASH=b WORKFLOW=w"


def test_parse_quirks() -> None:
    assert reported_to.parse_line("no colon here") is None
    assert reported_to.parse_line(": URL=x") is None
    assert reported_to.parse_line("L:") == ReportResult("L")
    # Unknown keys ignored, later keys win, invalid TIME ignored, label keeps spaces.
    r = reported_to.parse_line("ABRT Server: MSGID=1 URL=a URL=b TIME=yesterday junk")
    assert r == ReportResult("ABRT Server", url="b")
    assert reported_to.parse_line("e: URL=") == ReportResult("e", url="")
    text = "garbage\n\nA: URL=1\n: x\nB: URL=2\nA: URL=3"
    assert [r.label for r in reported_to.parse(text)] == ["A", "B", "A"]


def test_find_returns_last() -> None:
    text = "A: URL=1\nB: URL=2\nA: URL=3\nAB: URL=4\n"
    assert reported_to.find(text, "A") == ReportResult("A", url="3")
    assert reported_to.find(text, "AB") == ReportResult("AB", url="4")
    assert reported_to.find(text, "C") is None


def test_append_rule() -> None:
    assert reported_to.append_line("", "A: URL=1") == "A: URL=1\n"
    assert reported_to.append_line("A: URL=1\n", "A: URL=1") is None
    # dd_load_text strips the single trailing newline: the separator is added back.
    assert reported_to.append_line("A: URL=1", "B: URL=2") == "A: URL=1\nB: URL=2\n"
    assert reported_to.append_line("A: URL=1", "A: URL=1") is None
    # Prefix of an existing line is a different line.
    assert reported_to.append_line("A: URL=12\n", "A: URL=1") == "A: URL=12\nA: URL=1\n"
    with pytest.raises(ValueError):
        reported_to.append_line("", "two\nlines")


@pytest.mark.parametrize("bad", [ReportResult(""), ReportResult("a:b"), ReportResult("a\nb"),
                                 ReportResult("a", url="x y"), ReportResult("a", bthash="x\ty"),
                                 ReportResult("a", workflow="w w"), ReportResult("a", msg="1\n2")])
def test_format_rejects_unparseable(bad: ReportResult) -> None:
    with pytest.raises(ValueError):
        bad.format()


_token = st.text(st.characters(blacklist_characters=" \t\n\v\f\r", blacklist_categories=("Cs",)), max_size=20)
_results = st.builds(
    ReportResult,
    label=st.text(st.characters(blacklist_characters=":\n", blacklist_categories=("Cs",)), min_size=1, max_size=15),
    time=st.none() | st.integers(0, 2_000_000_000),
    url=st.none() | _token,
    bthash=st.none() | _token,
    workflow=st.none() | _token,
    msg=st.none() | st.text(st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), max_size=30),
)


@settings(max_examples=300, deadline=None)
@given(_results)
def test_format_parse_round_trip(result: ReportResult) -> None:
    line = result.format()
    parsed = reported_to.parse_line(line)
    assert parsed is not None
    assert parsed.format() == line
    assert parsed.label == result.label
    if result.msg is None:
        # Without MSG (which swallows the rest of the line) every field survives as given,
        # except that a token that itself looks like KEY= may be read as that key.
        assert parsed.time == result.time


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parse_never_raises(text: str) -> None:
    for record in reported_to.parse(text):
        assert record.label and ":" not in record.label
        try:
            line = record.format()
        except ValueError:
            continue  # e.g. a label that is all whitespace-free junk still formats; odd ones may not
        assert reported_to.parse_line(line) == record


@settings(max_examples=200, deadline=None)
@given(st.lists(_results, max_size=6))
def test_append_then_find(results: list[ReportResult]) -> None:
    text = ""
    model: list[str] = []  # libreport's rule: a line goes in unless it is already there
    for r in results:
        updated = reported_to.append_line(text, r.format())
        text = text if updated is None else updated
        if r.format() not in model:
            model.append(r.format())
    assert text == "".join(line + "\n" for line in model)
    for r in results:
        found = reported_to.find(text, r.label)
        assert found is not None
        last = [line for line in model if line.split(":", 1)[0] == r.label][-1]
        assert found.format() == last
