"""Errors of the upload service, under reporter's one exception tree."""

from __future__ import annotations

from reporter.errors import ReporterError


class ServerError(ReporterError):
    """Base of the upload service's errors."""


class ConfigError(ServerError):
    """A bad option or setting (database URL, blob URL, token file...)."""


class RejectedInput(ServerError):
    """A client sent something we refuse; carries the HTTP status and a one-line reason."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(" ".join(reason.split()))
        self.status = status

    @property
    def reason(self) -> str:
        """The one-line reason sent back to the client."""
        return str(self)


class TooLarge(RejectedInput):
    """A body, an archive or a part of it is over a size limit (413)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, 413)


class Unauthorized(RejectedInput):
    """No or a wrong credential (401, with a ``WWW-Authenticate`` challenge)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, 401)


class RateLimited(RejectedInput):
    """Too many requests for one credential (429, with ``Retry-After``)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limit exceeded; retry in {max(1, int(retry_after + 0.999))} s", 429)
        self.retry_after = max(1, int(retry_after + 0.999))


class NotFound(RejectedInput):
    """No such bucket, report or page (404)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, 404)
