"""Pure element rules: names, dd_load_text, numbers, ISO dates, text probe, cmdline quoting."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reporter import elements


@pytest.mark.parametrize("name", ["time", "a", "x" * 64, "core_backtrace", "#comment", "name~", ".hidden", "Schrödinger"])
def test_valid_element_names(name: str) -> None:
    assert elements.is_valid_element_name(name)


@pytest.mark.parametrize("name", ["", ".", "..", ".libreport", ".lock", "a/b", "/", "x" * 65, "tab\there",
                                  "nl\n", "del\x7f", "nul\0", "é" * 33])
def test_invalid_element_names(name: str) -> None:
    assert not elements.is_valid_element_name(name)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"", ""),
        (b"CCpp", "CCpp"),
        (b"CCpp\n", "CCpp"),  # exactly one \n, at the end: stripped ("echo x >file")
        (b"\n", ""),
        (b"a\nb", "a\nb\n"),  # multi-line with unterminated last line: \n added
        (b"a\nb\n", "a\nb\n"),
        (b"a\n\n", "a\n\n"),  # two newlines: kept as they are
        (b"N 5\n", "N 5"),
        (b"a\0b", "a b"),  # NUL becomes a space
        (b"a\x01\x02b\x1bc", "abc"),  # other control bytes are dropped
        (b"a\tb\rc\x0bd\x0ce", "a\tb\rc\x0bd\x0ce"),  # C whitespace is kept
        (b"del\x7f", "del\x7f"),  # 0x7f is >= ' ' and kept
        (b"caf\xc3\xa9", "café"),
        (b"bad\xff", "bad\ufffd"),
        (b"x\x01\n", "x"),  # the dropped byte does not hide the single trailing newline
    ],
)
def test_load_text_rules(raw: bytes, text: str) -> None:
    assert elements.load_text(raw) == text


_FORBIDDEN = {chr(c) for c in range(0x20)} - set(" \t\n\v\f\r")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_load_text_fuzz(raw: bytes) -> None:
    text = elements.load_text(raw)
    assert not _FORBIDDEN & set(text)
    # Applying the rules again changes nothing (the loader's output is a fixed point).
    assert elements.load_text(text.encode("utf-8")) == text
    kept = bytes(b for b in raw.replace(b"\0", b" ") if b >= 0x20 or b in b" \t\n\v\f\r")
    newlines = kept.count(b"\n")
    if newlines == 1 and kept.endswith(b"\n"):
        assert text.encode() == kept[:-1].decode("utf-8", "replace").encode()
    elif newlines and not kept.endswith(b"\n"):
        assert text.endswith("\n") and text.count("\n") == newlines + 1
    else:
        assert text.count("\n") == newlines


@pytest.mark.parametrize(
    ("raw", "value"),
    [(b"0", 0), (b"1655815326", 1655815326), (b"1593515258\n", 1593515258), (b"55", 55),
     (b"", None), (b"\n", None), (b"12\n\n", None), (b"-1", None), (b" 12", None), (b"12 ", None),
     (b"1e3", None), (b"0x10", None), (b"\xd9\xa1", None), (b"1" * 25, None), (b"9" * 19, None),
     (b"9223372036854775806", 9223372036854775806), (b"9223372036854775807", None), (None, None)],
)
def test_parse_number(raw: bytes | None, value: int | None) -> None:
    assert elements.parse_number(raw) == value


def test_format_number() -> None:
    assert elements.format_number(1462970611) == b"1462970611"
    for bad in (-1, True, 1.5):
        with pytest.raises(ValueError):
            elements.format_number(bad)  # type: ignore[arg-type]


def test_iso_date_round_trip() -> None:
    when = 1462970611
    text = elements.iso_date(when)
    assert text == time.strftime("%Y-%m-%d-%H:%M:%S", time.localtime(when))
    assert elements.parse_iso_date(text) == when
    for bad in ("2016-05-11 12:43:31", "2016-5-11-12:43:31", "2016-05-11-12:43:31x", "garbage", ""):
        assert elements.parse_iso_date(bad) is None


@pytest.mark.parametrize(
    ("data", "text"),
    [(b"plain text\n", True), (b"", True), (b"Schr\xc3\xb6dinger's Cat", True), (b"\x7fELF\x02\x01\x01", False),
     (b"a\0b", False), (b"\xff\xfe" * 20, False), (b"mostly ascii " * 10 + b"\xff", True),
     ("ü".encode() * 2000, True), (b"x" * 4095 + b"\xc3", True)],
)
def test_is_text(data: bytes, text: bool) -> None:
    assert elements.is_text(data) is text


def test_is_text_big() -> None:
    assert not elements.is_text(b"x" * 100, total_size=elements.MAX_TEXT_SIZE + 1)


@pytest.mark.parametrize(
    ("arg", "quoted"),
    [(b"sleep", b"sleep"), (b"/var/spool/abrt/ccpp-2022-06-21-14:24:55.227430-1306000/",
                            b"/var/spool/abrt/ccpp-2022-06-21-14:24:55.227430-1306000/"),
     (b"a b", b"'a b'"), (b"it's", b"'it\\'s'"), (b'say "hi"', b"'say \\\"hi\\\"'"),
     (b"back\\slash", b"'back\\\\slash'"), (b"l1\nl2\r\t", b"'l1\\nl2\\r\\t'"),
     (b"bell\x07", b"'bell\\x07'"), (b"caf\xc3\xa9", b"'caf\\xc3\\xa9'"), (b"x=$HOME|%s", b"x=$HOME|%s"),
     (b"", b"")],
)
def test_quote_arg(arg: bytes, quoted: bytes) -> None:
    assert elements.quote_arg(arg) == quoted


def test_format_cmdline_and_environ() -> None:
    assert elements.format_cmdline(b"sleep\x001000\x00") == b"sleep 1000"
    assert elements.format_cmdline(b"sh\0-c\0echo a b\0") == b"sh -c 'echo a b'"
    env = b"LESSOPEN=||/usr/bin/lesspipe.sh %s\0OLDPWD=/root\0_=/bin/sleep\0"
    # The same shape as the environ element of satyr's real problem directory.
    assert elements.format_environ(env) == b"'LESSOPEN=||/usr/bin/lesspipe.sh %s'\nOLDPWD=/root\n_=/bin/sleep\n"
    assert elements.format_args([b"a", b"b c"]) == b"a 'b c'"


def test_environ_fixture_lines_are_in_quoting_form(fixtures_dir) -> None:
    """Every line of a real ABRT environ element is either verbatim or one quoted arg we can
    decode, and re-quoting the decoded value reproduces the line byte for byte."""
    raw = (fixtures_dir / "satyr-problem-dir" / "environ").read_bytes()
    lines = raw.split(b"\n")
    assert lines[-1] == b""
    quoted = 0
    for line in lines[:-1]:
        value = _unquote(line)
        assert elements.quote_arg(value) == line
        quoted += line.startswith(b"'")
    assert quoted >= 4


def _unquote(arg: bytes) -> bytes:
    """Independent decoder of libreport's quoting (for the round-trip checks)."""
    if not arg.startswith(b"'"):
        return arg
    assert arg.endswith(b"'") and len(arg) >= 2
    body = arg[1:-1]
    out = bytearray()
    i = 0
    simple = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("\\"): 92, ord("'"): 39, ord('"'): 34}
    while i < len(body):
        if body[i] == 0x5C:
            c = body[i + 1]
            if c == ord("x"):
                out.append(int(body[i + 2 : i + 4], 16))
                i += 4
                continue
            out.append(simple[c])
            i += 2
        else:
            out.append(body[i])
            i += 1
    return bytes(out)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_quote_arg_fuzz(arg: bytes) -> None:
    quoted = elements.quote_arg(arg)
    assert _unquote(quoted) == arg
    # The quoted form is printable ASCII only, so it is one token of one line.
    assert all(0x20 <= b < 0x7F for b in quoted)
    plain = all(0x20 < b < 0x7F and b not in b"'\"\\" for b in arg)
    assert (quoted == arg) is plain or arg == b""
