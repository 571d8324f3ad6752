"""Exception tree of reporter."""


class ReporterError(Exception):
    """Base class of every error reporter raises on purpose."""


class ProblemDirError(ReporterError):
    """A path is not a valid problem directory, or an element cannot be read or written."""


class BadElementError(ProblemDirError):
    """Element *element* of a problem directory cannot be read: *problem* says why (e.g.
    ``a FIFO, not a regular file``), so that a listing can name it and go on."""

    def __init__(self, element: str, where: str, problem: str) -> None:
        super().__init__(f"element '{element}' of '{where}': {problem}")
        self.element = element
        self.problem = problem


class LockedError(ProblemDirError):
    """The problem directory is locked by another live process."""
