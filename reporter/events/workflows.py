"""Workflows (docs/formats/libreport.md §3.5): ``workflow_X.xml`` descriptions and event chains.

A workflow applies to a directory when a rule ``EVENT=workflow_X ...`` holds for it (a
condition-only rule in ``workflows.d/*.conf``) and its XML exists. Its ``<events>`` list may
hold ``prefix*`` wildcards, expanded against the known event descriptions.
"""

from __future__ import annotations

import fnmatch
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass

WORKFLOW_DIRS = ("/usr/share/libreport/workflows",)
MAX_XML_BYTES = 1 << 20
_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


@dataclass(frozen=True)
class Workflow:
    """A workflow: its id (``workflow_X``), screen name, priority and event chain."""

    id: str
    name: str
    description: str
    priority: int
    events: tuple[str, ...]


def _text(root: ET.Element, tag: str) -> str:
    for child in root:
        if child.tag in (tag, "_" + tag) and _LANG not in child.attrib:
            return (child.text or "").strip()
    return ""


def parse_workflow_xml(data: bytes, workflow_id: str) -> Workflow:
    """Parse a workflow description; :class:`ValueError` on malformed XML."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ValueError(f"workflow {workflow_id}: bad XML: {exc}") from None
    if root.tag != "workflow":
        raise ValueError(f"workflow {workflow_id}: root element is <{root.tag}>, not <workflow>")
    prio = _text(root, "priority")
    events = tuple((e.text or "").strip() for holder in root.iter("events") for e in holder.iter("event")
                   if (e.text or "").strip())
    return Workflow(workflow_id, _text(root, "name") or workflow_id, _text(root, "description"),
                    int(prio) if prio.lstrip("-").isdigit() else 0, events)


def load_workflows(dirs: tuple[str, ...] | list[str] = WORKFLOW_DIRS) -> tuple[dict[str, Workflow], list[str]]:
    """Every ``workflow_*.xml`` / ``.xml.in`` of *dirs* by id (earlier dirs win), and warnings."""
    found: dict[str, Workflow] = {}
    warnings: list[str] = []
    for d in dirs:
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for fname in names:
            wid = next((fname[: -len(s)] for s in (".xml.in", ".xml") if fname.endswith(s)), None)
            if not wid or not wid.startswith("workflow_") or wid in found:
                continue
            try:
                with open(os.path.join(d, fname), "rb") as f:
                    found[wid] = parse_workflow_xml(f.read(MAX_XML_BYTES), wid)
            except (OSError, ValueError) as exc:
                warnings.append(f"{os.path.join(d, fname)}: {exc}")
    return found, warnings


def expand_chain(events: tuple[str, ...] | list[str], known: list[str]) -> list[str]:
    """Expand ``prefix*`` entries against the *known* event names (sorted); others stay."""
    out: list[str] = []
    for event in events:
        if event.endswith("*"):
            out.extend(sorted(name for name in known if fnmatch.fnmatchcase(name, event)))
        else:
            out.append(event)
    return out


def by_priority(workflows: list[Workflow]) -> list[Workflow]:
    """Workflows as report-cli offers them: highest priority first, then by id."""
    return sorted(workflows, key=lambda w: (-w.priority, w.id))
