"""coripper.errors.capture_internal_exceptions: the one way coripper swallows an error.

An expected error (what bad input causes) is swallowed and logged at debug level; any other is
a bug: re-raised under CRASHKIT_STRICT (the tests set it), else logged with its traceback and
swallowed, so that the host never sees it.
"""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from coripper.errors import (STRICT_ENV, CfiError, CoreFormatError, CoripperError,
                             capture_internal_exceptions, strict)


def _parse(text: str) -> int | None:
    value = None
    with capture_internal_exceptions("parsing %r", text, expected=(ValueError,)):
        value = int(text)
    return value


def test_the_tests_run_strict() -> None:
    assert strict()


def test_an_expected_error_is_swallowed_and_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="coripper"):
        assert _parse("12") == 12
        assert _parse("twelve") is None
    [record] = caplog.records
    assert record.levelno == logging.DEBUG
    assert "parsing 'twelve': ValueError: invalid literal" in record.getMessage()


def test_a_bug_fails_under_strict() -> None:
    with pytest.raises(TypeError):
        with capture_internal_exceptions("a bug", expected=(ValueError,)):
            int(None)  # type: ignore[arg-type]


def test_a_bug_is_logged_with_its_traceback_and_swallowed_for_users(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(STRICT_ENV, "0")
    guard = capture_internal_exceptions("the build-id of %s", "/lib/x.so", expected=(ValueError,))
    with caplog.at_level(logging.DEBUG, logger="coripper"):
        with guard:
            int(None)  # type: ignore[arg-type]
    assert isinstance(guard.error, TypeError)
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "internal error in the build-id of /lib/x.so"
    assert record.exc_info is not None and record.exc_info[0] is TypeError


def test_nothing_but_exception_is_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STRICT_ENV, "0")
    with pytest.raises(KeyboardInterrupt):
        with capture_internal_exceptions("an interrupt", expected=(Exception,)):
            raise KeyboardInterrupt


def test_silent_without_logging_configured() -> None:
    """A program that configured no logging prints nothing (the library's NullHandler), and
    importing coripper's errors does not import logging (the crash hook's start-up)."""
    code = ("import os, sys; os.environ['CRASHKIT_STRICT'] = '0'\n"
            "import coripper.errors as e\n"
            "assert 'logging' not in sys.modules\n"
            "with e.capture_internal_exceptions('a bug'):\n"
            "    int(None)\n"
            "print('went on')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout == "went on\n" and res.stderr == ""


def test_cfi_errors_are_coripper_errors() -> None:
    assert issubclass(CfiError, CoripperError) and issubclass(CoreFormatError, CoripperError)
    from coripper.unwinder import cfi
    assert cfi.CfiError is CfiError
