"""The check plugin base class and the records a check run produces.

A check is a class with ``id``, ``phase``, ``title`` and one method, :meth:`Check.run`,
returning a frozen :class:`Result` (status, one-line summary, evidence, remedy). The
framework (:mod:`collectors.checks.run`) adds the identity and duration
(:class:`CheckRecord`) and turns an exception into status ``error``.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collectors.checks.host import Host

#: Every phase, in the order checks run and print.
PHASES = ("boot", "crash", "runtime", "containers", "reporting", "shutdown")
STATUSES = ("pass", "warn", "fail", "skip", "error")
#: Status -> severity (higher is worse); the summary sorts by it.
SEVERITY = {"fail": 3, "error": 2, "warn": 1, "pass": 0, "skip": 0}
MAX_EVIDENCE = 40


@dataclass(frozen=True)
class Result:
    """What a check decided: ``status`` (one of :data:`STATUSES`), a one-line ``summary``,
    the ``evidence`` (lines, values or files that decided it) and a ``remedy``."""

    status: str
    summary: str
    evidence: tuple[str, ...] = ()
    remedy: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown check status {self.status!r}")
        object.__setattr__(self, "summary", " ".join(self.summary.split()))
        ev = tuple(str(e) for e in self.evidence)
        if len(ev) > MAX_EVIDENCE:
            ev = ev[:MAX_EVIDENCE - 1] + (f"... and {len(ev) - MAX_EVIDENCE + 1} more",)
        object.__setattr__(self, "evidence", ev)


def passed(summary: str, evidence: Iterable[str] = (), remedy: str = "") -> Result:
    return Result("pass", summary, tuple(evidence), remedy)


def warn(summary: str, evidence: Iterable[str] = (), remedy: str = "") -> Result:
    return Result("warn", summary, tuple(evidence), remedy)


def fail(summary: str, evidence: Iterable[str] = (), remedy: str = "") -> Result:
    return Result("fail", summary, tuple(evidence), remedy)


def skip(summary: str, evidence: Iterable[str] = (), remedy: str = "") -> Result:
    return Result("skip", summary, tuple(evidence), remedy)


@dataclass(frozen=True)
class CheckRecord:
    """One check's outcome as ``crashkit check --json`` prints it."""

    id: str
    phase: str
    title: str
    result: Result
    duration: float = 0.0

    @property
    def status(self) -> str:
        return self.result.status

    def to_json(self) -> dict[str, Any]:
        r = self.result
        return {"id": self.id, "phase": self.phase, "title": self.title, "status": r.status,
                "summary": r.summary, "evidence": list(r.evidence), "remedy": r.remedy,
                "duration": round(self.duration, 4)}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> CheckRecord:
        """The inverse of :meth:`to_json` (diagnose reads the checks back this way)."""
        return cls(str(obj["id"]), str(obj["phase"]), str(obj["title"]),
                   Result(str(obj["status"]), str(obj.get("summary", "")),
                          tuple(str(e) for e in obj.get("evidence", ())), str(obj.get("remedy", ""))),
                   float(obj.get("duration", 0.0)))


class Check(abc.ABC):
    """One host check. Subclasses set the class attributes and implement :meth:`run`.

    ``id`` is ``<phase>.<name>`` (stable, used by ``--only``); ``opt_in`` names the option
    that enables a check which changes something (``self_test``): without it the check
    is skipped. Subclasses register themselves by being defined in a module of
    :mod:`collectors.checks.plugins`.
    """

    id: ClassVar[str]
    phase: ClassVar[str]
    title: ClassVar[str]
    opt_in: ClassVar[str | None] = None
    registry: ClassVar[list[type[Check]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not getattr(cls, "__abstractmethods__", None) and "id" in cls.__dict__:
            if cls.phase not in PHASES:
                raise ValueError(f"{cls.__name__}: unknown phase {cls.phase!r}")
            Check.registry.append(cls)

    @abc.abstractmethod
    def run(self, host: Host) -> Result:
        """Decide this check on *host*; raise only for bugs (they become ``error``)."""


@dataclass
class Selection:
    """Which checks to run (``--phase``, ``--only``) and the opt-ins that are on."""

    phases: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    opt_ins: frozenset[str] = field(default_factory=frozenset)
