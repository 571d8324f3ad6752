"""Finding 3 of the security review (issue 15): no regex of the kernel-log oops parser backtracks.

``collectors/oops/frames.py:FRAME_RE`` took a second for ``"<IRQ>" + 4085 blanks + "Z"``, and a
400 KB log with 100 such lines in a call trace took 160 s to scan: any user who can put a line
in the kernel log (or in a log file the collector reads) could stall the collector for minutes.

The tests here do not trust a list of known-bad inputs. They find every compiled regex of the
package (``collectors.oops`` and its ``sources``) by walking its modules, and attack each one
with strings built from its own parts, the way ReDoS finders do: for every repetition in the
pattern, the text that leads to it (prefix) followed by the text it repeats (pump), thousands of
times, and a stray character at the end that makes the match fail late; plus each literal
fragment of the pattern repeated on its own. A line-level property test (hypothesis) then feeds
such lines, up to the parser's 4,096-character cap, through the whole scanner in the states a
report can be in.

Timing on a loaded 2-core machine: every figure is CPU time of the test's thread (other
processes do not add to it), budgets are checked on the median of several runs, an operation
over budget is measured again with more runs before it fails (a whole line against a plain
line of the same length, to take a slow machine's pace out), and linearity is a ratio of the
fastest of alternating runs (4x the input may take at most 8x the time; linear takes 4x,
quadratic 16x).
"""

from __future__ import annotations

import ast
import importlib
import io
import pkgutil
import re
import re._constants as sre_c
import re._parser as sre_parse
import statistics
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings, target
from hypothesis import strategies as st

import collectors.oops
from collectors.oops.frames import parse_frame
from collectors.oops.lines import MAX_LINE_CHARS
from collectors.oops.parse import scan_stream, scan_text

PACKAGE = "collectors.oops"
CAP = MAX_LINE_CHARS  # 4096: the longest stretch of a line the parser looks at
LINE_BUDGET = 5e-3  # one line of up to CAP characters, through the whole scanner
OP_BUDGET = 2.5e-3  # one match()/search() of one regex on CAP characters (linear ones: < 1 ms)
GROWTH_LIMIT = 8.0  # time(4n) / time(n); linear is ~4, quadratic 16
GROWTH_FLOOR = 1e-3  # under this for 4 * CAP characters, an operation is fast whatever its shape

_REPEATS = (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT)
_CATEGORY_CHARS = {
    sre_c.CATEGORY_DIGIT: "7", sre_c.CATEGORY_SPACE: " ", sre_c.CATEGORY_WORD: "a",
    sre_c.CATEGORY_NOT_DIGIT: "a", sre_c.CATEGORY_NOT_SPACE: "a", sre_c.CATEGORY_NOT_WORD: " ",
}
_STRAYS = ("\x00", "!", "\ufffd")


# --- finding the regexes -------------------------------------------------------------------

@cache
def package_modules() -> tuple[Any, ...]:
    """``collectors.oops`` and every module below it, imported."""
    names = [PACKAGE] + [m.name for m in pkgutil.walk_packages(collectors.oops.__path__, PACKAGE + ".")]
    return tuple(importlib.import_module(n) for n in names)


@cache
def package_regexes() -> dict[str, re.Pattern[Any]]:
    """Every compiled regex the package's modules hold: module globals, class attributes, and
    lists/tuples/dicts of them (``_TABLE``, ``_IP_RES``, ``_HEADER_ONLY``), by dotted name."""
    found: dict[tuple[Any, int], str] = {}
    patterns: dict[str, re.Pattern[Any]] = {}

    def walk(obj: Any, where: str, depth: int) -> None:
        if isinstance(obj, re.Pattern):
            if (obj.pattern, obj.flags) not in found:
                found[(obj.pattern, obj.flags)] = where
                patterns[where] = obj
        elif depth < 3 and isinstance(obj, (list, tuple, set, frozenset)):
            for i, item in enumerate(obj):
                walk(item, f"{where}[{i}]", depth + 1)
        elif depth < 3 and isinstance(obj, dict):
            for key, item in obj.items():
                walk(item, f"{where}[{key!r}]", depth + 1)

    for mod in package_modules():
        for name, obj in vars(mod).items():
            if isinstance(obj, type) and obj.__module__ == mod.__name__:
                for attr, value in vars(obj).items():
                    walk(value, f"{mod.__name__}.{name}.{attr}", 1)
            else:
                walk(obj, f"{mod.__name__}.{name}", 0)
    return patterns


_RE_CALLS = {"compile", "search", "match", "fullmatch", "sub", "subn", "split", "findall", "finditer"}
# Functions that only build module-level patterns at import time (so the walk above sees them).
# possessive.compile is re.compile behind a rewrite; it is called at module level like re.compile.
_BUILDERS = {("title.py", "_compile"), ("possessive.py", "compile")}


def test_every_regex_is_compiled_at_module_level() -> None:
    """A regex built inside a function would escape the enumeration: there are none."""
    root = Path(collectors.oops.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if (path.name, getattr(func, "name", "<lambda>")) in _BUILDERS:
                continue
            for node in ast.walk(func):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and isinstance(node.func.value, ast.Name) and node.func.value.id in ("re", "possessive")
                        and node.func.attr in _RE_CALLS):
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}: re.{node.func.attr}")
    assert offenders == []


def test_the_walk_finds_the_package_regexes() -> None:
    regexes = package_regexes()
    assert len(regexes) >= 120, sorted(regexes)
    for name in ("collectors.oops.frames.FRAME_RE", "collectors.oops.frames._IP_RES[0]",
                 "collectors.oops.kinds._TABLE[0][0]", "collectors.oops.parse._HEADER_ONLY['mce']",
                 "collectors.oops.lines._SYSLOG", "collectors.oops.sources.journal._BOOT_LINE",
                 "collectors.oops.sources.kmsg_records._KMSG_ESCAPE", "collectors.oops.title._SKIP"):
        assert name in regexes


# --- attack strings from a regex's own parts --------------------------------------------------

def _class_chars(items: list[tuple[Any, Any]]) -> list[str]:
    """A few characters a ``[...]`` set matches."""
    if items and items[0][0] is sre_c.NEGATE:
        excluded = set()
        for op, av in items[1:]:
            if op is sre_c.LITERAL:
                excluded.add(chr(av))
            elif op is sre_c.RANGE:
                excluded.update(chr(c) for c in range(av[0], min(av[1], 0x2FF) + 1))
            elif op is sre_c.CATEGORY:
                excluded.update(c for c in " \t7a_A:.(" if _category_has(av, c))
        return [c for c in "a 7:.x-_(<" if c not in excluded][:2]
    out = []
    for op, av in items:
        if op is sre_c.LITERAL:
            out.append(chr(av))
        elif op is sre_c.RANGE:
            out.extend(dict.fromkeys((chr(av[0]), chr(av[1]))))
        elif op is sre_c.CATEGORY:
            out.append(_CATEGORY_CHARS.get(av, "a"))
    return out


def _category_has(category: Any, char: str) -> bool:
    probe = {sre_c.CATEGORY_DIGIT: r"\d", sre_c.CATEGORY_SPACE: r"\s", sre_c.CATEGORY_WORD: r"\w",
             sre_c.CATEGORY_NOT_DIGIT: r"\D", sre_c.CATEGORY_NOT_SPACE: r"\S",
             sre_c.CATEGORY_NOT_WORD: r"\W"}.get(category, r"\w")
    return re.fullmatch(probe, char) is not None


def _chars(op: Any, av: Any) -> list[str]:
    if op is sre_c.LITERAL:
        return [chr(av)]
    if op is sre_c.NOT_LITERAL:
        return ["b" if av == ord("a") else "a"]
    if op is sre_c.ANY:
        return ["x"]
    if op is sre_c.IN:
        return _class_chars(av)
    return []


def _children(op: Any, av: Any) -> list[list[tuple[Any, Any]]]:
    if op in _REPEATS:
        return [list(av[2])]
    if op is sre_c.SUBPATTERN:
        return [list(av[-1])]
    if op is sre_c.ATOMIC_GROUP:
        return [list(av)]
    if op is sre_c.BRANCH:
        return [list(b) for b in av[1]]
    if op in (sre_c.ASSERT, sre_c.ASSERT_NOT):
        return [list(av[1])]
    return []


def sample(seq: list[tuple[Any, Any]], variant: int = 0) -> str:
    """A string the node sequence (roughly) matches; ``variant`` picks other set members and
    alternatives. Assertions and anchors produce nothing."""
    out = []
    for op, av in seq:
        chars = _chars(op, av)
        if chars:
            out.append(chars[variant % len(chars)])
        elif op in _REPEATS:
            out.append(sample(list(av[2]), variant) * max(av[0], min(av[1], 1)))
        elif op in (sre_c.SUBPATTERN, sre_c.ATOMIC_GROUP):
            out.append(sample(_children(op, av)[0], variant))
        elif op is sre_c.BRANCH:
            branches = _children(op, av)
            out.append(sample(branches[variant % len(branches)], variant))
    return "".join(out)


def fragments(seq: list[tuple[Any, Any]]) -> set[str]:
    """The pattern's literal runs and a few characters of each of its sets, at every depth."""
    frags: set[str] = set()
    run = ""
    for op, av in seq:
        chars = _chars(op, av)
        if chars:
            frags.update(chars)
            run += chars[0]
            continue
        if run:
            frags.add(run)
            run = ""
        for child in _children(op, av):
            frags |= fragments(child)
    if run:
        frags.add(run)
    return frags


def pumps(seq: list[tuple[Any, Any]], prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(prefix, pump)`` for every repetition: text leading up to it, and text it repeats."""
    for op, av in seq:
        if op in _REPEATS and av[1] > 1:
            body = list(av[2])
            bodies = {sample(body, k) for k in range(3)}
            if len(body) == 1 and body[0][0] is sre_c.BRANCH:
                bodies |= {sample(b) for b in _children(*body[0])}
            for pump in sorted(bodies):
                if pump:
                    yield prefix, pump
            yield from pumps(body, prefix)
        elif op in (sre_c.SUBPATTERN, sre_c.ATOMIC_GROUP, sre_c.BRANCH):
            for child in _children(op, av):
                yield from pumps(child, prefix)
        prefix += sample([(op, av)])


def parse_tree(rx: re.Pattern[Any]) -> list[tuple[Any, Any]]:
    if isinstance(rx.pattern, bytes):
        return list(sre_parse.parse(rx.pattern.decode("latin-1"), rx.flags & ~re.UNICODE))
    return list(sre_parse.parse(rx.pattern, rx.flags))


def _fill(prefix: str, pump: str, stray: str, n: int) -> str:
    room = n - len(prefix) - len(stray)
    if room <= 0:
        return (prefix + stray)[:n]
    return prefix + (pump * (room // len(pump) + 1))[:room] + stray


@cache
def attack_shapes(where: str) -> tuple[tuple[str, str, str], ...]:
    """``(prefix, pump, stray)`` triples for the regex named ``where``."""
    tree = parse_tree(package_regexes()[where])
    shapes: set[tuple[str, str, str]] = set()
    for prefix, pump in pumps(tree):
        for stray in _STRAYS[:2]:
            shapes.add((prefix, pump, stray))
            shapes.add(("", prefix + pump, stray))
    for frag in fragments(tree):
        for stray in _STRAYS:
            shapes.add(("", frag, stray))
    whole = sample(tree)
    if whole:
        shapes.add(("", whole, "!"))
        shapes.add(("", whole + " ", "!"))
    return tuple(sorted(shapes))


def attack(rx: re.Pattern[Any], shape: tuple[str, str, str], n: int) -> Any:
    text = _fill(*shape, n)
    return text.encode("utf-8") if isinstance(rx.pattern, bytes) else text


# --- timing -------------------------------------------------------------------------------

# CPU time of this thread: what the regex engine spends, whatever else the machine runs.
clock = time.thread_time


def median_time(fn: Callable[[Any], Any], arg: Any, runs: int) -> float:
    """Median CPU seconds of ``runs`` calls ``fn(arg)``."""
    times = []
    for _ in range(runs):
        t0 = clock()
        fn(arg)
        times.append(clock() - t0)
    return statistics.median(times)


def _check_op(where: str, op: str, fn: Callable[[Any], Any], rx: re.Pattern[Any],
              shape: tuple[str, str, str]) -> str | None:
    """None when ``fn`` is fast and linear on this attack, else what went wrong."""
    big = attack(rx, shape, 4 * CAP)
    t0 = clock()
    fn(big)
    if clock() - t0 < GROWTH_FLOOR:
        return None  # 16K characters in under 1 ms: no need to look closer
    small = attack(rx, shape, CAP)
    t_small = median_time(fn, small, 5)
    if t_small > OP_BUDGET:
        t_small = median_time(fn, small, 11)  # a busy machine: look again before failing
        if t_small > OP_BUDGET:
            return f"{where}.{op}: {t_small * 1e3:.1f} ms on {_show(small)}"
    t_small, t_big = growth(fn, small, big, 5)
    if t_big > GROWTH_FLOOR and t_big > GROWTH_LIMIT * t_small:
        t_small, t_big = growth(fn, small, big, 15)  # a busy machine: look again before failing
        if t_big > GROWTH_FLOOR and t_big > GROWTH_LIMIT * t_small:
            return (f"{where}.{op}: {t_small * 1e3:.2f} ms -> {t_big * 1e3:.2f} ms for 4x the input "
                    f"(not linear) on {_show(small)}")
    return None


def growth(fn: Callable[[Any], Any], small: Any, big: Any, runs: int) -> tuple[float, float]:
    """Fastest of ``runs`` timings of ``fn`` on ``small`` and on ``big``, taken in turns so that
    a change of load meets both (the fastest run is the one least disturbed by other work)."""
    best_small = best_big = float("inf")
    for _ in range(runs):
        t0 = clock()
        fn(small)
        t1 = clock()
        fn(big)
        t2 = clock()
        best_small, best_big = min(best_small, t1 - t0), min(best_big, t2 - t1)
    return best_small, best_big


def _show(text: Any) -> str:
    return f"{text[:50]!r}... ({len(text)} chars)"


@pytest.mark.parametrize("where", sorted(package_regexes()))
def test_every_regex_is_linear_on_its_own_literals(where: str) -> None:
    """match() and search() of each regex stay under 2.5 ms at the 4,096-character cap, and grow
    linearly, on adversarial repetitions of the regex's own parts."""
    rx = package_regexes()[where]
    failures = []
    for shape in attack_shapes(where):
        for op in ("match", "search"):
            problem = _check_op(where, op, getattr(rx, op), rx, shape)
            if problem:
                failures.append(problem)
                break
        if len(failures) >= 3:
            break
    assert failures == []


# --- whole lines through the scanner --------------------------------------------------------

# The states a line can meet: no report open, a report's header, its call trace, after its
# end marker, a sanitizer body; and the same behind syslog and /dev/kmsg prefixes.
CONTEXTS = {
    "idle": [],
    "header": ["BUG: kernel NULL pointer dereference, address: 0000000000000008"],
    "trace": ["BUG: kernel NULL pointer dereference, address: 0000000000000008", "Call Trace:",
              " <TASK>", " dump_stack+0x5c/0x80"],
    "after": ["WARNING: CPU: 0 PID: 1 at a.c:1 f+0x1/0x2", "Call Trace:", " f+0x1/0x2",
              "---[ end trace 0000000000000000 ]---"],
    "kasan": ["BUG: KASAN: use-after-free in f+0x1/0x2", "Read of size 8 at addr ffff88800bad"],
    "lockdep": ["WARNING: possible circular locking dependency detected",
                "swapper/0/1 is trying to acquire lock:"],
}
PREFIXES = ("", "Nov 24 03:15:20 host kernel: ", "4,1234,5678,-;", "<4>[  123.456789][  T123] ")


def scan_line(context: list[str], prefix: str, line: str) -> None:
    lines = [prefix + c for c in context] + [(prefix + line)[:CAP]]
    scan_text("\n".join(lines) + "\n")


def _line_time(context: list[str], prefix: str, line: str) -> float:
    """CPU seconds that *line* costs the scanner in *context*: the median of a few runs, and
    when that is over budget, the fastest of runs taken in turns with a plain line of the same
    length, with the machine's pace taken out (on the budget's machine a plain line costs at
    most a fifth of it; a loaded or slow one, two pytest-xdist workers on hyper-threads or a
    VM's steal time, makes both slower together)."""
    t = median_time(lambda _: scan_line(context, prefix, line), None, 3)
    if t <= LINE_BUDGET:
        return t
    plain = "x" * len(line)
    t_plain, t_line = growth(lambda text: scan_line(context, prefix, text), plain, line, 9)
    return t_line / max(1.0, t_plain / (LINE_BUDGET / 5))


def line_problem(context: list[str], prefix: str, line: str) -> str | None:
    """None when *line* is cheap for the scanner, else what is wrong: over budget, and either
    over four times the budget or growing faster than linearly from a quarter of the line
    (back-tracking is quadratic or worse and costs seconds; a long line of regex-dense text
    costs a few milliseconds on a slow machine, linearly)."""
    t = _line_time(context, prefix, line)
    if t <= LINE_BUDGET:
        return None
    if t > 4 * LINE_BUDGET:
        return f"{t * 1e3:.1f} ms"
    quarter = line[:len(line) // 4]
    t_quarter, t_line = growth(lambda text: scan_line(context, prefix, text), quarter, line, 9)
    if t_line > GROWTH_LIMIT * max(t_quarter, LINE_BUDGET / 20):
        return f"{t_quarter * 1e3:.2f} ms -> {t_line * 1e3:.2f} ms for 4x the line (not linear)"
    return None


@cache
def attack_pairs() -> tuple[tuple[str, str], ...]:
    """``(prefix, pump)`` of every regex of the package, and each literal fragment as a pump."""
    pairs: set[tuple[str, str]] = set()
    for where in package_regexes():
        tree = parse_tree(package_regexes()[where])
        pairs |= set(pumps(tree))
        pairs |= {("", f) for f in fragments(tree) if f}
    pairs |= {(line, " ") for ctx in CONTEXTS.values() for line in ctx}
    return tuple(sorted(pairs))


@st.composite
def adversarial_lines(draw: st.DrawFn) -> str:
    """A prefix, a pump repeated to the length, a stray character: from one regex, or two."""
    pairs = attack_pairs()
    prefix, pump = draw(st.sampled_from(pairs))
    lead = draw(st.sampled_from(("",) + tuple(p for p, _ in pairs[:: max(1, len(pairs) // 200)])))
    stray = draw(st.sampled_from(_STRAYS + ("", "Z", ")", "]", ":")))
    length = draw(st.sampled_from((CAP, CAP - 1, CAP // 2, 1000)))
    return _fill(lead + prefix, pump, stray, length)


ISSUE_LINE = "<IRQ>" + " " * 4085 + "Z"


@pytest.mark.slow
@settings(max_examples=400, deadline=None, derandomize=True,
          phases=[Phase.explicit, Phase.generate, Phase.target],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(line=st.one_of(adversarial_lines(), st.text(max_size=CAP)),
       context=st.sampled_from(sorted(CONTEXTS)), prefix=st.sampled_from(PREFIXES))
@example(line=ISSUE_LINE, context="trace", prefix="")
def test_any_line_up_to_the_cap_parses_in_5_ms(line: str, context: str, prefix: str) -> None:
    """Hypothesis looks for slow lines (and, with ``target``, for slower ones): over 5 ms, a
    line must still be linear and under 20 ms (see :func:`line_problem`)."""
    target(_line_time(CONTEXTS[context], prefix, line), label="seconds per line")
    problem = line_problem(CONTEXTS[context], prefix, line)
    assert problem is None, f"{problem} in state {context!r} for {_show(prefix + line)}"


# --- the inputs of the report ----------------------------------------------------------------

def test_issue_frame_line_parses_in_5_ms() -> None:
    assert median_time(parse_frame, ISSUE_LINE, 5) < LINE_BUDGET
    for context in CONTEXTS.values():
        assert line_problem(context, "", ISSUE_LINE) is None


def test_issue_log_with_100_slow_lines_in_a_call_trace_scans_fast() -> None:
    """The review's 400 KB log (100 such lines inside a ``Call Trace:``) took 160 s."""
    head = ["BUG: kernel NULL pointer dereference, address: 0000000000000000", "Oops: 0000 [#1] SMP",
            "CPU: 0 PID: 1 Comm: init Not tainted 6.1.0 #1", "Call Trace:", " <TASK>",
            " do_syscall_64+0x3f/0x90"]
    log = "\n".join(head + [ISSUE_LINE] * 100 + [" </TASK>", "---[ end trace 0000000000000000 ]---"]) + "\n"
    assert len(log) > 400_000
    t0 = clock()
    reports = list(scan_stream(io.BytesIO(log.encode())))
    elapsed = clock() - t0
    assert [r.kind for r in reports] == ["null-ptr-deref"]
    assert [f.function for f in reports[0].frames] == ["do_syscall_64"]
    assert elapsed < 100 * LINE_BUDGET, f"{elapsed:.2f} s"
