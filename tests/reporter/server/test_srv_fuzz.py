"""Hypothesis fuzzing of the archive validator and the uReport parser: refuse cleanly, never crash."""

from __future__ import annotations

import io
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from srv_helpers import ccpp_elements, make_archive

from reporter.server.archive import ArchiveLimits, ProblemArchive, validate
from reporter.server.errors import RejectedInput
from reporter.server.ureport import UReport, parse

SEED_ARCHIVES = [make_archive(ccpp_elements(i), fmt) for i, fmt in enumerate(("gz", "xz", "zst", "bz2", "tar"))]
LIMITS = ArchiveLimits(max_members=50, max_uncompressed=4 << 20, ratio_floor=1 << 20)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _validate(data: bytes) -> ProblemArchive | None:
    try:
        return validate(io.BytesIO(data), LIMITS)
    except RejectedInput as exc:
        assert exc.status in (400, 413) and "\n" not in str(exc) and str(exc)
        return None


@FUZZ
@given(st.sampled_from(SEED_ARCHIVES), st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=8),
       st.integers(0, 1 << 16))
def test_mutated_archives(seed: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(seed)
    for pos, value in flips:
        data[pos % len(data)] = value
    if cut:
        data = data[: max(1, len(data) - cut % len(data))]
    result = _validate(bytes(data))
    if result is not None:
        assert result.get("time") is not None and result.get("type") is not None


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    _validate(data)


@FUZZ
@given(st.dictionaries(st.text(min_size=1, max_size=70), st.binary(max_size=200), max_size=12))
def test_random_element_sets(elements: dict[str, bytes]) -> None:
    try:
        archive = make_archive(elements)
    except (ValueError, UnicodeError):
        return
    _validate(archive)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children,
                                                                                      max_size=5), max_leaves=30)
UREPORT_KEYS = st.sampled_from(["ureport_version", "reason", "os", "problem", "packages", "auth", "reporter"])


def _parse(data: bytes) -> UReport | None:
    try:
        return parse(data, max_bytes=64 * 1024, max_depth=16)
    except RejectedInput as exc:
        assert exc.status in (400, 413) and "\n" not in str(exc)
        return None


@FUZZ
@given(st.dictionaries(UREPORT_KEYS, JSON, max_size=7))
def test_random_ureport_documents(doc: dict[str, Any]) -> None:
    _parse(json.dumps(doc).encode())


@FUZZ
@given(JSON, st.sampled_from(["core", "python", "kerneloops", "java", "ruby"]))
def test_random_problems(problem: Any, kind: str) -> None:
    if isinstance(problem, dict):
        problem["type"] = kind
    doc = {"ureport_version": 2, "reason": "r", "os": {"name": "fedora", "version": "1", "architecture": "x"},
           "problem": problem, "packages": []}
    result = _parse(json.dumps(doc).encode())
    if result is not None:
        assert len(result.bthash) == 40


@FUZZ
@given(st.binary(max_size=2048))
def test_random_ureport_bytes(data: bytes) -> None:
    _parse(data)
