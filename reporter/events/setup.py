"""Where the event configuration lives, and running events and workflows with it.

With libreport installed (``/etc/libreport/report_event.conf`` exists) its configuration
is used as it is, ours included through ``events.d/crashkit_event.conf``; without it the
package's own ``report_event.conf`` (which includes ``crashkit_event.conf`` and
``/etc/crashkit/events.d/*.conf``) stands in, so reporting works alone.
``$CRASHKIT_EVENT_CONF`` or ``[report] event_conf`` picks another rules file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from reporter import report_config
from reporter.events import engine, options, rules, workflows
from reporter.events.command import ShellCommand
from reporter.reporters import reportable

LIBREPORT_CONF = "/etc/libreport/report_event.conf"
EVENT_CONF_ENV = "CRASHKIT_EVENT_CONF"
DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
OWN_RULES = os.path.join(DATA_DIR, "report_event.conf")
CRASHKIT_EVENT_CONF = os.path.join(DATA_DIR, "crashkit_event.conf")


@dataclass(frozen=True)
class EventsSetup:
    """Files the engine reads: the rules file, event XML dirs, option dirs, workflow dirs."""

    rules_file: str
    xml_dirs: tuple[str, ...] = (*options.EVENT_XML_DIRS, DATA_DIR)
    conf_dirs: tuple[str, ...] = ()
    workflow_dirs: tuple[str, ...] = (*workflows.WORKFLOW_DIRS, DATA_DIR)

    @classmethod
    def default(cls, cfg: report_config.ReportConfig | None = None) -> EventsSetup:
        """From ``$CRASHKIT_EVENT_CONF``, ``[report] event_conf``, libreport's or ours."""
        cfg = cfg or report_config.load()
        rules_file = (os.environ.get(EVENT_CONF_ENV) or cfg.event_conf
                      or (LIBREPORT_CONF if os.path.exists(LIBREPORT_CONF) else OWN_RULES))
        return cls(rules_file, conf_dirs=tuple(options.default_conf_dirs()))

    def load_rules(self) -> rules.LoadResult:
        """The rules, loaded afresh (libreport reloads them for every event run)."""
        return rules.load_rules(self.rules_file)

    def catalog(self) -> options.EventCatalog:
        """The event descriptions."""
        return options.EventCatalog.load(list(self.xml_dirs))

    def workflows(self) -> dict[str, workflows.Workflow]:
        """The workflow descriptions."""
        return workflows.load_workflows(list(self.workflow_dirs))[0]


@dataclass
class ChainResult:
    """The outcome of a chain of events (``-e A -e B`` or a workflow)."""

    runs: list[engine.EventRun] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: The event not run because the problem is marked not-reportable, and why.
    refused: tuple[str, str] | None = None

    @property
    def rc(self) -> int:
        """0 when every event ran (or one stopped the chain with 70), else the failing status;
        :data:`reportable.EXIT_NOT_REPORTABLE` when the chain stopped at a not-reportable problem."""
        for run in self.runs:
            if run.rc == engine.EXIT_STOP_EVENT_RUN:
                return 0
            if run.rc != 0:
                return run.rc
        return reportable.EXIT_NOT_REPORTABLE if self.refused else 0

    @property
    def stopped(self) -> bool:
        """True when a command stopped the chain with exit status 70."""
        return any(r.rc == engine.EXIT_STOP_EVENT_RUN for r in self.runs)


def run_chain(setup: EventsSetup, path: str, events: list[str], *, log: Callable[[str], None] | None = None,
              warn: Callable[[str], None] | None = None, timeout: float | None = None,
              extra_env: dict[str, str] | None = None, force: bool = False) -> ChainResult:
    """Run *events* in order on *path*; an event with no applying rule is skipped (with a
    warning); any non-zero exit (70 included) ends the chain.

    As libreport's event runner, an event whose description asks for a review
    (``<gui-review-elements>`` not ``no``) is not run on a problem marked ``not-reportable``:
    the reason is logged and the chain ends (``refused``). *force* runs it anyway and tells
    the reporters so (``$CRASHKIT_REPORT_FORCE=1``)."""
    result = ChainResult()
    catalog = setup.catalog()
    chain = workflows.expand_chain(events, sorted(catalog.events))
    if force:
        extra_env = {**(extra_env or {}), reportable.FORCE_ENV: "1"}
    for event in chain:
        desc = catalog.events.get(event)
        refused = None if desc is None or desc.skip_review else reportable.refusal(path, force)
        if refused is not None:
            result.refused = (event, refused)
            if log is not None:
                log(f"{event}: {refused}")
            break
        loaded = setup.load_rules()
        for w in loaded.warnings:
            if warn is not None:
                warn(w)
        env = catalog.option_values(event, list(setup.conf_dirs))
        runner = ShellCommand(path, event, env, log=log, timeout=timeout, extra_env=extra_env)
        run = engine.run_event(loaded.rules, path, event, runner, warn=warn)
        if not run.handled:
            result.skipped.append(event)
            if warn is not None:
                warn(f"no actions are found for event '{event}'")
            continue
        result.runs.append(run)
        if run.rc != 0:
            break
    return result


def applicable_workflows(setup: EventsSetup, path: str) -> list[workflows.Workflow]:
    """Workflows whose ``EVENT=workflow_X`` rule holds for *path* and whose XML exists."""
    loaded = setup.load_rules()
    names = engine.list_possible_events(loaded.rules, path, "workflow")
    known = setup.workflows()
    return workflows.by_priority([known[n] for n in names if n in known])
