"""The exceptions a damaged or hostile ELF/DWARF file causes in pyelftools and in our readers.

pyelftools checks little: a garbage file surfaces as its own errors, or as whatever Python
raises on the bad value (a short read in :mod:`struct`, an unknown form or tag looked up in a
table, a failed ``assert``, a reference that points nowhere, a form pyelftools does not
implement: ``NotImplementedError``). These are what the unwinder
expects from a file it did not write; anything else that escapes code reading one is a bug
(see :class:`coripper.errors.capture_internal_exceptions`).
"""

from __future__ import annotations

import struct

from elftools.common.exceptions import DWARFError, ELFError

from coripper.errors import CoripperError

ELF_INPUT_ERRORS: tuple[type[Exception], ...] = (
    ELFError, DWARFError, CoripperError, OSError, EOFError, ValueError, KeyError, IndexError,
    AssertionError, NotImplementedError, struct.error,
)
