"""LXC: ``lxc-ls -f -F ...`` tables and container ``config`` files (lxc.container.conf(5))."""

from __future__ import annotations

from dataclasses import dataclass

from collectors.errors import StateError

#: lxc_state_t names (lxc/src/lxc/state.c) → our states.
STATE_MAP = {"RUNNING": "running", "STOPPED": "stopped", "FROZEN": "paused", "FREEZING": "running",
             "THAWED": "running", "STARTING": "running", "STOPPING": "running",
             "ABORTING": "unknown"}
FIELDS = ("NAME", "STATE", "PID", "AUTOSTART", "GROUPS", "IPV4", "IPV6", "UNPRIVILEGED")


def parse_fancy(text: str) -> list[dict[str, str]]:
    """An ``lxc-ls -f`` table: columns start where their header starts (lxc-ls pads every
    column to its widest entry); ``-`` cells are dropped."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    header = lines[0]
    names = header.split()
    if not names or names[0] != "NAME":
        raise StateError(f"lxc-ls printed {header[:60]!r}, not a table")
    starts = []
    pos = 0
    for name in names:
        pos = header.index(name, pos)
        starts.append(pos)
        pos += len(name)
    rows = []
    for line in lines[1:]:
        row = {}
        for i, name in enumerate(names):
            end = starts[i + 1] if i + 1 < len(names) else len(line)
            cell = line[starts[i]:end].strip() if name != "NAME" else line[:end].strip()
            if cell and cell != "-":
                row[name] = cell
        if row.get("NAME"):
            rows.append(row)
    return rows


@dataclass(frozen=True)
class LxcConfig:
    """What we keep of a container's ``config``."""

    values: dict[str, list[str]]
    template: str | None       # "# Parameters passed to the template: -d debian -r bookworm"

    def get(self, key: str) -> str | None:
        vals = self.values.get(key)
        return vals[-1] if vals else None

    @property
    def rootfs(self) -> str | None:
        """The rootfs as a host path (``dir:``/``overlayfs:...:upper`` prefixes removed)."""
        value = self.get("lxc.rootfs.path") or self.get("lxc.rootfs")
        if not value:
            return None
        if value.startswith("dir:"):
            return value[4:]
        if value.startswith(("overlay:", "overlayfs:")):
            return value.rsplit(":", 1)[-1]
        return value.split(":", 1)[-1] if ":" in value and not value.startswith("/") else value

    @property
    def ipv4(self) -> list[str]:
        return [v.split("/")[0] for k, vals in self.values.items()
                if k.startswith("lxc.net.") and k.endswith(".ipv4.address") for v in vals]


def parse_config(text: str) -> LxcConfig:
    """``key = value`` lines; ``#`` comments (lxc-create writes the template used in them)."""
    values: dict[str, list[str]] = {}
    template = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            if "Parameters passed to the template:" in stripped:
                template = stripped.split(":", 1)[1].strip() or template
            elif "Template used to create this container:" in stripped and template is None:
                template = stripped.split(":", 1)[1].strip()
            continue
        key, eq, value = stripped.partition("=")
        if eq and key.strip():
            values.setdefault(key.strip(), []).append(value.strip())
    return LxcConfig(values, template)


def os_from_template(params: str | None) -> str | None:
    """``-d debian -r bookworm -a amd64`` (lxc-download) → ``debian bookworm amd64``."""
    if not params:
        return None
    words = params.split()
    picked = {}
    for i, w in enumerate(words[:-1]):
        if w in ("-d", "--dist", "-r", "--release", "-a", "--arch"):
            picked[w.lstrip("-")[0]] = words[i + 1]
    found = [picked[k] for k in ("d", "r", "a") if k in picked]
    return " ".join(found) if found else params


def memory_limit(cfg: LxcConfig) -> int | None:
    """``lxc.cgroup2.memory.max`` / ``lxc.cgroup.memory.limit_in_bytes`` in bytes."""
    value = cfg.get("lxc.cgroup2.memory.max") or cfg.get("lxc.cgroup.memory.limit_in_bytes")
    if not value or value == "max":
        return None
    mul = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(value[-1:].upper(), 1)
    digits = value[:-1] if mul != 1 else value
    return int(digits) * mul if digits.isdigit() else None
