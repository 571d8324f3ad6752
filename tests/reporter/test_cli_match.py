"""reporter.match: coredumpctl-style matches, journalctl time forms, and selection (pure)."""

from __future__ import annotations

import os
import time

import pytest

from reporter.match import (Matcher, MatchError, parse_match, parse_span, parse_time, select,
                            signal_name)

ROWS = [
    {"directory": "/s/ccpp-a", "time": 100, "last_occurrence": 100, "pid": 7, "global_pid": 1007, "uid": 0,
     "signal": 11, "executable": "/usr/bin/sleep", "type": "CCpp", "container": None,
     "container_id": None, "container_hostname": None, "reported": False},
    {"directory": "/s/ccpp-b", "time": 200, "last_occurrence": 500, "pid": 8, "global_pid": 8, "uid": 1000,
     "signal": 6, "executable": "/bin/bash", "type": "CCpp", "container": "podman",
     "container_id": "4f1c" + "0" * 60, "container_hostname": "web", "reported": [{"label": "x", "url": None}]},
    {"directory": "/s/oops-c", "time": 300, "last_occurrence": 300, "pid": None, "global_pid": None,
     "uid": None, "signal": None, "executable": None, "type": "Kerneloops", "container": None,
     "container_id": None, "container_hostname": None, "reported": False},
    {"directory": "/s/broken", "time": None, "last_occurrence": None, "pid": None, "global_pid": None,
     "uid": None, "signal": None, "executable": None, "type": None, "container": None,
     "container_id": None, "container_hostname": None, "reported": False},
]


def names(rows: list) -> list[str]:  # type: ignore[type-arg]
    return [os.path.basename(r["directory"]) for r in rows]


@pytest.mark.parametrize("words, expected", [
    (["7"], ["ccpp-a"]),                       # the pid in its namespace
    (["1007"], ["ccpp-a"]),                    # the host's pid
    (["sleep"], ["ccpp-a"]),                   # the executable's name
    (["/usr/bin/sleep"], ["ccpp-a"]),          # its path
    (["ccpp-b"], ["ccpp-b"]),                  # a directory name
    (["/s/oops-c"], ["oops-c"]),               # a directory path
    (["sleep", "bash"], ["ccpp-a", "ccpp-b"]),  # one field twice: either
    (["sleep", "uid=1000"], []),               # different fields: both
    (["bash", "uid=1000"], ["ccpp-b"]),
    (["type=kerneloops"], ["oops-c"]),         # type is case-insensitive
    (["container=podman"], ["ccpp-b"]), (["container=web"], ["ccpp-b"]),
    (["container=4f1c"], ["ccpp-b"]),          # an id prefix of at least 4 characters
    (["container=4f"], []),
    (["sig=SEGV"], ["ccpp-a"]), (["sig=6"], ["ccpp-b"]), (["signal=sigabrt"], ["ccpp-b"]),
    (["COREDUMP_EXE=/bin/bash"], ["ccpp-b"]),  # coredumpctl's journal field names
    (["exe=sleep"], ["ccpp-a"]), (["comm=bash"], ["ccpp-b"]), (["dir=oops-c"], ["oops-c"]),
    ([], ["broken", "ccpp-a", "oops-c", "ccpp-b"]),  # no match: everything, oldest first
])
def test_matches(words: list[str], expected: list[str]) -> None:
    assert names(select(ROWS, Matcher.parse(words))) == expected


@pytest.mark.parametrize("word", ["pid=x", "uid=", "nosuch=1", "sig=NOPE", ""])
def test_bad_matches(word: str) -> None:
    with pytest.raises(MatchError):
        parse_match(word)


def test_a_path_with_an_equals_sign_is_a_path() -> None:
    m = parse_match("/tmp/a=b/prog")
    assert (m.field, m.value) == ("path", "/tmp/a=b/prog")


def test_filters_order_and_limit() -> None:
    rows = select(ROWS, since=150, until=400)
    assert names(rows) == ["broken", "oops-c"]  # b's last occurrence (500) is after until; the
    # unreadable row has no time and is never hidden by a time filter
    assert names(select(ROWS, reported=True)) == ["ccpp-b"]
    assert names(select(ROWS, reported=False)) == ["broken", "ccpp-a", "oops-c"]
    assert names(select(ROWS, limit=2)) == ["oops-c", "ccpp-b"]  # the 2 newest
    assert names(select(ROWS, limit=2, reverse=True)) == ["ccpp-b", "oops-c"]
    assert select(ROWS, limit=0) == []


def test_signal_names() -> None:
    assert signal_name(11) == "SIGSEGV" and signal_name(36) == "SIGRTMIN+2" and signal_name(None) is None


@pytest.mark.parametrize("text, seconds", [
    ("1h", 3600), ("30min", 1800), ("1h 30min", 5400), ("1h30m", 5400), ("2 days", 172800),
    ("90", 90), ("1.5s", 1.5), ("1w", 604800), ("1M", 2629800), ("1y", 31557600), ("500ms", 0.5),
])
def test_spans(text: str, seconds: float) -> None:
    assert parse_span(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "h", "1 fortnight", "1..2s"])
def test_bad_spans(text: str) -> None:
    with pytest.raises(MatchError):
        parse_span(text)


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


NOW = 1_714_564_800.0  # 2024-05-01 12:00:00 UTC, a Wednesday


@pytest.mark.parametrize("text, expected", [
    ("now", NOW), ("-1h", NOW - 3600), ("+30min", NOW + 1800), ("2 days ago", NOW - 172800),
    ("1h left", NOW + 3600),
    ("today", 1_714_521_600), ("yesterday", 1_714_435_200), ("tomorrow", 1_714_608_000),
    ("@1700000000", 1_700_000_000), ("@1700000000.5", 1_700_000_000.5),
    ("2024-05-01", 1_714_521_600), ("2024-05-01 10:30", 1_714_559_400),
    ("2024-05-01 10:30:15", 1_714_559_415), ("2024-05-01T10:30:15", 1_714_559_415),
    ("2024-05-01T10:30:15.25", 1_714_559_415.25), ("2024-05-01T10:30:15Z", 1_714_559_415),
    ("2024-05-01T12:30:15+02:00", 1_714_559_415), ("2024-05-01 08:30:15 -0200", 1_714_559_415),
    ("2024-05-01 10:30:15 UTC", 1_714_559_415), ("Wed 2024-05-01 10:30:15", 1_714_559_415),
    ("10:30", 1_714_559_400), ("10:30:15", 1_714_559_415),
])
def test_times(utc: None, text: str, expected: float) -> None:
    assert parse_time(text, NOW) == pytest.approx(expected)


def test_local_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        assert parse_time("2024-05-01 12:00", NOW) == NOW - 7200  # CEST is UTC+2
        assert parse_time("2024-01-01 12:00", NOW) == 1_704_106_800  # CET is UTC+1
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("text", ["garbage", "2024-13-01", "2024-05-01 25:00", "-1 fortnight", "@x",
                                  "24-05-01"])
def test_bad_times(utc: None, text: str) -> None:
    with pytest.raises(MatchError):
        parse_time(text, NOW)
