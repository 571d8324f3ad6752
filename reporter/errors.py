"""Exception tree of reporter."""


class ReporterError(Exception):
    """Base class of every error reporter raises on purpose."""


class ProblemDirError(ReporterError):
    """A path is not a valid problem directory, or an element cannot be read or written."""


class LockedError(ProblemDirError):
    """The problem directory is locked by another live process."""
