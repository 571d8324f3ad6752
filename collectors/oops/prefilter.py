"""Where in a block of log bytes a kernel report may start: one multi-pattern pass.

A scan spends almost all of its time on lines that cannot start a report. This module
finds, in one Aho-Corasick pass over a whole block (ahocorasick-rs, a Rust automaton with
a SIMD prefilter; about grep's speed), the lines that hold one of the start markers'
anchor substrings (:data:`collectors.oops.kinds.ANCHORS`); only those lines, and the
lines of a report that is open, go through the per-line parser.
"""

from __future__ import annotations

from ahocorasick_rs import MATCHKIND_LEFTMOST_FIRST, BytesAhoCorasick

from collectors.oops.kinds import ANCHORS
from collectors.oops.window import SPECIAL_WORDS


def _minimal(words: tuple[str, ...]) -> list[str]:
    """The anchors that contain no other anchor (a line holds one of these exactly when it
    holds any anchor)."""
    unique = sorted(set(words))
    return [w for w in unique if not any(o != w and o in w for o in unique)]


# Leftmost-first matching is the fast mode and reports at least one match on every line
# that holds an anchor: the search resumes where a match ended, and no anchor spans a newline.
_AUTOMATON = BytesAhoCorasick([w.encode() for w in _minimal(ANCHORS)], matchkind=MATCHKIND_LEFTMOST_FIRST)


def has_anchor(text: str) -> bool:
    """Does ``text`` hold one of the anchors (:data:`collectors.oops.kinds.ANCHORS`)? The
    anchors are ASCII, and UTF-8 (lone surrogates passed through) encodes no other character
    with an ASCII byte, so the bytes automaton answers for the text."""
    return bool(_AUTOMATON.find_matches_as_indexes(text.encode("utf-8", "surrogatepass")))


def anchor_lines(block: bytes) -> list[int]:
    """Offsets of the starts of the lines of ``block`` that hold an anchor, ascending and
    without repeats."""
    starts: list[int] = []
    last = -1
    rfind = block.rfind
    for _, start, _ in _AUTOMATON.find_matches_as_indexes(block):
        if start <= last:
            continue  # a second anchor on a line already listed
        ls = rfind(b"\n", 0, start) + 1
        nl = block.find(b"\n", start)
        last = nl if nl >= 0 else len(block)
        starts.append(ls)
    return starts


# Words that make a stretch of plain lines need a closer look (collectors.oops.parse,
# _offer_run): what a title window treats specially, a boot line's start (one of these is in
# every line kinds.BOOT_RE matches that holds no anchor), a questionable frame marker.
WINDOW_WORDS = frozenset(SPECIAL_WORDS)
BOOT_WORDS = frozenset(("Command line: ", "command line: ", "Booting ", "-- "))
QUESTIONABLE_WORDS = frozenset((" ? ", " (unreliable)"))
# ... and what a plain line cannot hold: a carriage return, a console login prompt.
ODD_WORDS = frozenset(("\r", " login: "))
_CHUNK_WORDS = sorted(WINDOW_WORDS | BOOT_WORDS | QUESTIONABLE_WORDS | ODD_WORDS)
_CHUNK_AUTOMATON = BytesAhoCorasick([w.encode() for w in _CHUNK_WORDS])  # overlapping-safe: all matches


def chunk_words(chunk: bytes) -> frozenset[str]:
    """Which of the words above occur in ``chunk``."""
    return frozenset(_CHUNK_WORDS[i] for i, _, _ in _CHUNK_AUTOMATON.find_matches_as_indexes(chunk, overlapping=True))
