"""Exception tree of coripper."""


class CoripperError(Exception):
    """Base class of every error coripper raises on purpose."""


class CoreFormatError(CoripperError):
    """The input is not a usable ELF core (bad magic, truncated headers, lying sizes)."""


class UnsupportedCoreError(CoripperError):
    """A valid ELF core of a kind we refuse (32-bit, big-endian, unknown e_machine)."""


class UnwindError(CoripperError):
    """A backtrace could not be computed at all (no threads, no memory, no modules)."""
