"""Exception tree of collectors."""


class CollectorError(Exception):
    """Base class of every error collectors raise on purpose."""


class HookError(CollectorError):
    """Installing, removing or running the core_pattern hook failed."""


class SpoolError(HookError, OSError):
    """The spool is missing, a symlink, or not a root-owned private directory (an OSError
    too, with the errno and the path, for callers that handle file-system errors)."""


class OopsError(CollectorError):
    """A kernel log source could not be read or parsed."""


class StateError(CollectorError):
    """A container/VM state source failed (bad tool output, unusable socket, bad --root)."""
