"""The ``not-reportable`` element: a problem its collector (or a uReport server's solution)
says must not be reported.

libreport's event runner (report-cli, the client API's ``run_event_on_dir_name_batch`` and
its interactive twin) prints the element and runs nothing for an event whose description
asks for a review of the data (``<gui-review-elements>`` not ``no``: the upload, Bugzilla,
mailx... reporters), which ends the chain; events that skip the review, as
``report_uReport`` does, still run: a uReport carries no memory, environment or files.
crashkit applies the same rule in :func:`reporter.events.setup.run_chain` and also in the
reporters themselves, since post-create (no event description) runs them directly:
``reporter-crashkit`` and ``reporter-crashkit-sentry`` refuse such a directory (exit
:data:`EXIT_NOT_REPORTABLE`), ``reporter-crashkit-ureport`` sends it, and a flush never
delivers a queued upload or Sentry event whose directory became not reportable since.
``--force`` (``crashkit report --force``, which sets :data:`FORCE_ENV` for the commands it
runs) reports it anyway.
"""

from __future__ import annotations

import errno
import os

ELEMENT = "not-reportable"
FORCE_ENV = "CRASHKIT_REPORT_FORCE"
#: Exit status of a reporter (and of ``crashkit report``) that refused a not-reportable problem.
EXIT_NOT_REPORTABLE = 3
#: Outbox entry kinds that carry the problem's data and so obey ``not-reportable``.
REFUSING_KINDS = ("upload", "sentry")
MAX_REASON = 64 * 1024


def reason(path: str) -> str | None:
    """The text of *path*'s ``not-reportable`` element (``""`` when it is empty: still not
    reportable), ``None`` when there is none or the directory is gone."""
    from reporter.elements import load_text

    try:
        fd = os.open(os.path.join(path, ELEMENT), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        return f"(the {ELEMENT} element is unreadable: {exc.strerror})"
    try:
        return load_text(os.read(fd, MAX_REASON)).strip()
    finally:
        os.close(fd)


def forced(flag: bool = False) -> bool:
    """True with ``--force`` or ``$CRASHKIT_REPORT_FORCE`` set to a true value."""
    return flag or os.environ.get(FORCE_ENV, "").strip().lower() in ("1", "yes", "true", "on")


def refusal(path: str, force: bool = False) -> str | None:
    """The one-line message refusing *path*, or ``None`` when it may be reported."""
    if forced(force):
        return None
    why = reason(path)
    if why is None:
        return None
    first = " ".join(why.split()) or "(no reason given)"
    return f"not reportable: {first[:300]}{'...' if len(first) > 300 else ''}"
