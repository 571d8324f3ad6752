"""Exception tree of coripper, and the one way coripper (and collectors) swallow an error.

Standard library only, and cheap to import: the crash hook imports it through the minimizer
(``logging`` is imported only when an error is actually captured).
"""

from __future__ import annotations

import os
from types import TracebackType

TYPE_CHECKING = False     # typing is not imported at run time (coripper/minimizer/lighttyping.py)

if TYPE_CHECKING:
    import logging

#: Set (to anything but ``0``) under the tests: a swallowed error that is a bug re-raises.
STRICT_ENV = "CRASHKIT_STRICT"


class CoripperError(Exception):
    """Base class of every error coripper raises on purpose."""


class CoreFormatError(CoripperError):
    """The input is not a usable ELF core (bad magic, truncated headers, lying sizes)."""


class UnsupportedCoreError(CoripperError):
    """A valid ELF core of a kind we refuse (32-bit, big-endian, unknown e_machine)."""


class UnwindError(CoripperError):
    """A backtrace could not be computed at all (no threads, no memory, no modules)."""


class CfiError(CoripperError):
    """Malformed call frame information or DWARF expression (the unwinder catches it and then
    falls back to another method or stops the thread's stack)."""


def strict() -> bool:
    """True when ``CRASHKIT_STRICT`` is set (the tests set it): bugs re-raise, not hide."""
    return os.environ.get(STRICT_ENV, "") not in ("", "0")


class capture_internal_exceptions:
    """``with capture_internal_exceptions("DWARF of %s", path, expected=(ELFError,)): ...``

    The one place where an error is swallowed so that neither a hostile input nor a bug of
    ours takes the host down (sentry-sdk's helper of that name). The block's exception is
    logged with ``what % args`` as its context and not raised; the code after the block (the
    caller's fallback) runs instead. An exception of an ``expected`` type, what a hostile or
    damaged input legitimately causes, is logged at debug level. Any other is a bug: logged
    at error level with its traceback, and re-raised under :func:`strict`, so that it fails
    a test instead of hiding. Exceptions that are not :class:`Exception` (KeyboardInterrupt,
    SystemExit, a deadline's BaseException) always propagate. ``error`` is the swallowed
    exception, or None."""

    __slots__ = ("what", "args", "expected", "logger", "error")

    def __init__(self, what: str, *args: object,
                 expected: type[BaseException] | tuple[type[BaseException], ...] = (),
                 logger: str = "coripper") -> None:
        self.what = what
        self.args = args
        self.expected = expected
        self.logger = logger
        self.error: Exception | None = None

    def __enter__(self) -> capture_internal_exceptions:
        return self

    def __exit__(self, ty: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if value is None or not isinstance(value, Exception):
            return False
        expected = isinstance(value, self.expected)
        if not expected and strict():
            return False
        self.error = value
        log = _logger(self.logger)
        if log is not None:
            context = self.what % self.args if self.args else self.what
            if expected:
                log.debug("%s: %s: %s", context, type(value).__name__, value)
            else:
                log.error("internal error in %s", context, exc_info=(type(value), value, tb))
        return True


def _logger(name: str) -> logging.Logger | None:
    """The named logger, given a NullHandler on first use (a library prints nothing unless
    the program configured logging); None where logging cannot be imported (a confined child
    that imports nothing more: a swallowed error is then silent)."""
    try:
        import logging
    except ImportError:
        return None
    log = logging.getLogger(name)
    if not log.handlers:
        log.addHandler(logging.NullHandler())
    return log
