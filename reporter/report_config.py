"""The ``[report]`` section of ``/etc/crashkit/crashkit.toml`` (``$CRASHKIT_CONFIG`` overrides).

Every key is optional (docs/reporting.md, "Configuration")::

    [report]
    event_conf = "/etc/libreport/report_event.conf"  # rules file; default: libreport's, else ours
    post_create = true          # the crash hook runs the post-create event
    post_create_timeout = 300   # seconds per post-create command
    workflow = "workflow_Crashkit"
    outbox = "/var/spool/crashkit/.outbox"

    [report.upload]             # reporter-crashkit; Upload_URL etc. in the environment win
    url = "https://crashes.example.com/upload/"
    username = "host-17"
    password_file = "/etc/crashkit/upload.token"   # basic auth; or token_file: Bearer
    include_host_state = true   # add host_checks.json / container_state.json if missing

    [report.ureport]            # reporter-crashkit-ureport
    url = "https://crashes.example.com/faf"

    [report.sentry]             # reporter-crashkit-sentry
    dsn = "https://KEY@sentry.example.com/2"

Unknown keys are ignored with a warning; a missing or unreadable file means defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CONFIG = "/etc/crashkit/crashkit.toml"
CONFIG_ENV = "CRASHKIT_CONFIG"
MAX_CONFIG_BYTES = 1 << 20


@dataclass(frozen=True)
class ReportConfig:
    """The reporting settings; ``sections`` holds ``[report.NAME]`` tables as read."""

    event_conf: str | None = None
    post_create: bool = False
    post_create_timeout: float = 300.0
    workflow: str | None = None
    outbox: str | None = None
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def section(self, name: str) -> dict[str, Any]:
        """``[report.NAME]`` (empty when absent)."""
        return self.sections.get(name, {})


_KEYS: dict[str, type | tuple[type, ...]] = {"event_conf": str, "post_create": bool, "post_create_timeout": (int, float), "workflow": str,
         "outbox": str}


def _valid(key: str, value: Any) -> bool:
    if not isinstance(value, _KEYS[key]):
        return False
    number: Any = value
    return key != "post_create_timeout" or (not isinstance(number, bool) and number > 0)


def parse(doc: dict[str, Any]) -> ReportConfig:
    """Build a :class:`ReportConfig` from a parsed TOML document (pure)."""
    section = doc.get("report", {})
    if not isinstance(section, dict):
        return ReportConfig(warnings=("[report] is not a table",))
    values: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    for key, value in section.items():
        if isinstance(value, dict):
            sections[key] = value
        elif key in _KEYS and _valid(key, value):
            values[key] = float(value) if key == "post_create_timeout" else value
        else:
            warnings.append(f"report.{key}: unknown key or bad value, ignored")
    return ReportConfig(**values, sections=sections, warnings=tuple(warnings))


def config_path() -> str:
    """``$CRASHKIT_CONFIG`` or the system file."""
    return os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG


def load(path: str | None = None) -> ReportConfig:
    """Read the configuration (missing file: defaults; broken file: defaults + warning)."""
    path = path or config_path()
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES)
    except FileNotFoundError:
        return ReportConfig()
    except OSError as exc:
        return ReportConfig(warnings=(f"{path}: {exc.strerror}",))
    import tomllib

    try:
        return parse(tomllib.loads(raw.decode("utf-8")))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return ReportConfig(warnings=(f"{path}: {exc}",))
