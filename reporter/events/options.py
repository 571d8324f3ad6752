"""Event descriptions (``EVENT.xml``) and event options (docs/formats/libreport.md §3.4).

An event's options are environment variables: their names are the ``<option name=...>``
attributes of its XML description; their values come from ``<default-value>``, then
``/etc/libreport/events/EVENT.conf``, then ``$XDG_CACHE_HOME/abrt/events/EVENT.conf``
(later wins). ``<import-event-options event="X"/>`` pulls in X's options first. Before an
event's commands run, every option with a value is exported (overriding the inherited
environment, as libreport's ``putenv`` does).

Both installed ``.xml`` files and source ``.xml.in`` files (gettext ``_name``/``_label``
tags) are read; ``xml:lang`` translations are skipped.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from reporter import libreport_conf

MAX_XML_BYTES = 1 << 20
EVENT_XML_DIRS = ("/usr/share/libreport/events",)
EVENT_CONF_DIR = "/etc/libreport/events"
_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


@dataclass(frozen=True)
class EventOption:
    """One ``<option>``: environment name, type, default (``None`` when there is none)."""

    name: str
    type: str = "text"
    label: str = ""
    default: str | None = None
    allow_empty: bool = False


@dataclass(frozen=True)
class EventDescription:
    """What an event's XML says (the fields crashkit uses)."""

    event: str
    name: str = ""
    description: str = ""
    options: tuple[EventOption, ...] = ()
    imports: tuple[str, ...] = ()
    requires_items: tuple[str, ...] = ()
    exclude_items_by_default: tuple[str, ...] = ()
    exclude_items_always: tuple[str, ...] = ()
    exclude_binary_items: bool = False
    minimal_rating: int | None = None
    #: ``<gui-review-elements>no``: the event sends nothing to review (libreport's
    #: ``ec_skip_review``; default false), so it runs on a not-reportable problem too.
    skip_review: bool = False


def _text(elem: ET.Element, tag: str) -> str | None:
    """Text of child *tag* (or its gettext form ``_tag``) without ``xml:lang``."""
    for child in elem:
        if child.tag in (tag, "_" + tag) and _LANG not in child.attrib:
            return (child.text or "").strip()
    return None


def _items(value: str | None) -> tuple[str, ...]:
    return tuple(i.strip() for i in (value or "").split(",") if i.strip())


def _option(elem: ET.Element) -> EventOption | None:
    name = elem.get("name")
    if not name:
        return None
    default = _text(elem, "default-value")
    return EventOption(name=name, type=elem.get("type", "text"), label=_text(elem, "label") or "",
                       default=default or None,
                       allow_empty=libreport_conf.parse_bool(_text(elem, "allow-empty")))


def parse_event_xml(data: bytes, event: str) -> EventDescription:
    """Parse an event description; raises :class:`ValueError` on malformed XML."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ValueError(f"event {event}: bad XML: {exc}") from None
    if root.tag != "event":
        raise ValueError(f"event {event}: root element is <{root.tag}>, not <event>")
    options: list[EventOption] = []
    imports: list[str] = []
    for holder in root.iter("options"):
        for elem in holder.iter():
            if elem.tag == "option":
                opt = _option(elem)
                if opt is not None:
                    options.append(opt)
            elif elem.tag == "import-event-options" and elem.get("event"):
                imports.append(elem.get("event", ""))
    rating = _text(root, "minimal-rating")
    return EventDescription(
        event=event, name=_text(root, "name") or event, description=_text(root, "description") or "",
        options=tuple(options), imports=tuple(imports),
        requires_items=_items(_text(root, "requires-items")),
        exclude_items_by_default=_items(_text(root, "exclude-items-by-default")),
        exclude_items_always=_items(_text(root, "exclude-items-always")),
        exclude_binary_items=libreport_conf.parse_bool(_text(root, "exclude-binary-items")),
        minimal_rating=int(rating) if rating and rating.lstrip("-").isdigit() else None,
        skip_review=_text(root, "gui-review-elements") is not None
        and not libreport_conf.parse_bool(_text(root, "gui-review-elements")))


def event_name_of(filename: str) -> str | None:
    """``report_X.xml`` / ``report_X.xml.in`` → ``report_X``."""
    for suffix in (".xml.in", ".xml"):
        if filename.endswith(suffix) and len(filename) > len(suffix):
            return filename[: -len(suffix)]
    return None


@dataclass
class EventCatalog:
    """Every event description found in the XML directories, by event name."""

    events: dict[str, EventDescription] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, dirs: tuple[str, ...] | list[str] = EVENT_XML_DIRS) -> EventCatalog:
        """Read ``*.xml`` / ``*.xml.in`` of *dirs* (earlier directories win)."""
        cat = cls()
        for d in dirs:
            try:
                names = sorted(os.listdir(d))
            except OSError:
                continue
            for fname in names:
                event = event_name_of(fname)
                if event is None or event in cat.events or event.startswith("workflow_"):
                    continue  # workflow descriptions may share a directory (ours do)
                try:
                    with open(os.path.join(d, fname), "rb") as f:
                        cat.events[event] = parse_event_xml(f.read(MAX_XML_BYTES), event)
                except (OSError, ValueError) as exc:
                    cat.warnings.append(f"{os.path.join(d, fname)}: {exc}")
        return cat

    def option_values(self, event: str, conf_dirs: list[str], _seen: frozenset[str] = frozenset()) -> dict[str, str]:
        """The environment an event's commands get from its options (imports first).

        Keys of ``EVENT.conf`` that the XML does not declare are options too, as libreport
        adds them to the event's option list; an event with a ``.conf`` and no XML has
        options all the same.
        """
        values: dict[str, str] = {}
        if event in _seen:
            return values
        desc = self.events.get(event)
        own: dict[str, str | None] = {}
        if desc is not None:
            for imported in desc.imports:
                values.update(self.option_values(imported, conf_dirs, _seen | {event}))
            own = {opt.name: opt.default for opt in desc.options}
        for d in conf_dirs:
            own.update(libreport_conf.read(os.path.join(d, event + ".conf")).values)
        values.update({k: v for k, v in own.items() if v is not None})
        return values


def default_conf_dirs() -> list[str]:
    """``/etc/libreport/events`` then the user's ``$XDG_CACHE_HOME/abrt/events``."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return [EVENT_CONF_DIR, os.path.join(cache, "abrt", "events")]
