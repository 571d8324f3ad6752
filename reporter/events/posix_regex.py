"""POSIX basic regular expressions through the C library's ``regcomp``/``regexec``.

libreport matches ``elem~=REGEX`` with ``regcomp(REG_NOSUB)`` (basic syntax, unanchored):
calling the same C functions gives the same answers, bracket expressions, ``\\{m,n\\}``,
back-references and locale classes included, which no translation to Python's ``re`` does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

REG_NOSUB = 8      # glibc and musl agree on the flag values
REG_NOMATCH = 1
# sizeof(regex_t) is 64 on glibc/x86-64 and smaller elsewhere; room to spare.
_REGEX_T_SIZE = 256

_lock = threading.Lock()
_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    with _lock:
        if _libc is None:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            lib.regcomp.argtypes = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int)
            lib.regcomp.restype = ctypes.c_int
            lib.regexec.argtypes = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                    ctypes.c_void_p, ctypes.c_int)
            lib.regexec.restype = ctypes.c_int
            lib.regfree.argtypes = (ctypes.c_void_p,)
            lib.regfree.restype = None
            _libc = lib
        return _libc


class BadRegex(ValueError):
    """``regcomp`` refused the pattern (libreport logs "Bad regexp" and the rule fails)."""


def _c(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape").split(b"\0", 1)[0]


def any_line_matches(pattern: str, value: str) -> bool:
    """True when *pattern* (POSIX BRE) matches some line of *value* (libreport
    ``regcmp_lines``: the value is split at ``\\n``, an empty value is one empty line)."""
    lib = _lib()
    preg = ctypes.create_string_buffer(_REGEX_T_SIZE)
    rc = lib.regcomp(preg, _c(pattern), REG_NOSUB)
    if rc != 0:
        raise BadRegex(f"Bad regexp '{pattern}'")
    try:
        for line in value.split("\n"):
            if lib.regexec(preg, _c(line), 0, None, 0) == 0:
                return True
        return False
    finally:
        lib.regfree(preg)
