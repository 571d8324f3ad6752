"""The crash hook's settings: section ``[hook]`` of the crashkit TOML config.

Where the hook looks, first match wins:

1. ``--config=PATH`` on its command line (``crashkit hook install`` bakes the path of the
   ``hook.toml`` it writes into the generated launcher, because the kernel starts the hook
   with an empty environment);
2. ``$CRASHKIT_CONFIG`` (for running the hook by hand);
3. ``/etc/crashkit/crashkit.toml``.

A missing file means "all defaults". Unknown keys and invalid values are reported as
warnings (the hook logs them) and ignored, so a typo never disables crash capture.
``tomllib`` is imported only when a file exists.
"""

from __future__ import annotations

from typing import Any

import os
from dataclasses import dataclass, field, fields, replace

DEFAULT_CONFIG = "/etc/crashkit/crashkit.toml"
CONFIG_ENV = "CRASHKIT_CONFIG"
MAX_CONFIG_BYTES = 1 << 20
MiB = 1 << 20

#: Signals whose default action dumps core (signal(7)); abrt's list plus SIGQUIT/SIGXCPU/SIGXFSZ.
CORE_SIGNALS = (4, 8, 11, 7, 6, 5, 31, 3, 24, 25)  # ILL FPE SEGV BUS ABRT TRAP SYS QUIT XCPU XFSZ


@dataclass(frozen=True)
class HookConfig:
    """Every setting of the hook, with safe defaults."""

    spool: str = "/var/spool/crashkit"
    keep: str = "minimized"                # minimized | full | none
    compress: str = "none"                 # none | zstd
    max_spool_size: int = 5000 * MiB       # bytes; 0 = no cap
    min_free_space: int = 1250 * MiB       # bytes free on the spool's filesystem; 0 = no floor
    crash_loop_limit: int = 5              # full captures per executable per window; 0 = off
    crash_loop_window: int = 60            # seconds
    max_core_size: int = 4096 * MiB        # bytes of coredump saved at most; 0 = no cap
    time_limit: int = 300                  # seconds for the whole hook
    ignored_paths: tuple[str, ...] = ()    # fnmatch globs against the executable
    signals: tuple[int, ...] = CORE_SIGNALS
    log_file: str | None = None            # also append log lines here
    postprocess: bool = True               # detached core_backtrace/duphash child
    # SHA-256 of the whole incoming core in the provenance note of a minimized core. Off by
    # default: hashing reads every byte into user space (~1.8 GiB/s, one core), while without
    # it the dropped bytes are spliced away in the kernel at pipe speed, and the crashed
    # process is reaped only when its core is drained. The note then says "digest": null.
    hash_core: bool = False
    # Seconds the minimizer may spend analysing the core (I/O waits not counted); past it the
    # rest of the core is drained unread, so the kernel is released, and the minimized core
    # keeps what was found so far, marked truncated. 0 = no budget.
    analysis_budget: float = 5.0
    # Hooks that capture fully (read, minimize, save the core) at the same time; a crash that
    # finds them all busy is counted from /proc with its core drained unread (load shedding,
    # docs/hook.md). 0 = no limit.
    max_full_hooks: int = 8
    warnings: tuple[str, ...] = field(default=(), compare=False)
    #: The file these settings came from (passed on to post-processing for [report]).
    source: str | None = field(default=None, compare=False)


_CHOICES = {"keep": ("minimized", "full", "none"), "compress": ("none", "zstd")}
_INTS = {"max_spool_size", "min_free_space", "crash_loop_limit", "crash_loop_window",
         "max_core_size", "time_limit", "max_full_hooks"}


def config_path(option: str | None = None, environ: dict[str, str] | None = None) -> str:
    """The config file to read: *option* > ``$CRASHKIT_CONFIG`` > the system file."""
    if option:
        return option
    env = os.environ if environ is None else environ
    return env.get(CONFIG_ENV) or DEFAULT_CONFIG


def parse_config(data: dict[str, Any], base: HookConfig | None = None) -> HookConfig:
    """Build a :class:`HookConfig` from a parsed TOML document (pure).

    Only the ``[hook]`` table is read; bad keys/values become ``warnings``.
    """
    cfg = base or HookConfig()
    section = data.get("hook", {})
    warnings: list[str] = []
    if not isinstance(section, dict):
        return replace(cfg, warnings=("[hook] is not a table",))
    known = {f.name for f in fields(HookConfig)} - {"warnings", "source"}
    changes: dict[str, object] = {}
    for key, value in section.items():
        if key not in known:
            warnings.append(f"unknown key hook.{key} ignored")
            continue
        try:
            changes[key] = _check(key, value)
        except ValueError as exc:
            warnings.append(f"hook.{key}: {exc}; default kept")
    return replace(cfg, **changes, warnings=tuple(warnings))  # type: ignore[arg-type]


def _check(key: str, value: object) -> object:
    if key in _CHOICES:
        if value not in _CHOICES[key]:
            raise ValueError(f"must be one of {', '.join(_CHOICES[key])}")
        return value
    if key in _INTS:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError("must be a non-negative integer")
        if key == "time_limit" and value == 0:
            raise ValueError("must be at least 1")
        return value
    if key in ("spool", "log_file"):
        if not isinstance(value, str) or not value.startswith("/") or "\0" in value:
            raise ValueError("must be an absolute path")
        return value
    if key == "ignored_paths":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("must be a list of strings")
        return tuple(value)
    if key == "signals":
        if not isinstance(value, list) or not all(isinstance(v, int) and 0 < v < 65 for v in value):
            raise ValueError("must be a list of signal numbers")
        return tuple(value)
    if key == "analysis_budget":
        if not isinstance(value, (int, float)) or isinstance(value, bool) \
                or not 0 <= value < float("inf"):
            raise ValueError("must be a non-negative number of seconds")
        return float(value)
    if key in ("postprocess", "hash_core"):
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    raise ValueError("unsupported")  # pragma: no cover


def load_config(path: str) -> HookConfig:
    """Read *path* (missing ⇒ defaults). An unreadable or invalid file gives the defaults
    plus a warning: the hook must still capture the crash."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return HookConfig()
    except OSError as exc:
        return HookConfig(warnings=(f"{path}: {exc.strerror}; using defaults",))
    try:
        raw = os.read(fd, MAX_CONFIG_BYTES)
    except OSError as exc:
        return HookConfig(warnings=(f"{path}: {exc.strerror}; using defaults",))
    finally:
        os.close(fd)
    import tomllib  # only when there is a file: keeps the hook's start-up light

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return HookConfig(warnings=(f"{path}: {exc}; using defaults",))
    return replace(parse_config(data), source=path)


def render_config(cfg: HookConfig) -> str:
    """TOML text of the ``[hook]`` section for *cfg* (what ``crashkit hook install`` writes),
    by tomli-w: any string (newlines, control characters, quotes) round-trips through
    ``tomllib``. Imported here, not at the top: the crash hook reads configs, never writes."""
    import tomli_w

    table: dict[str, object] = {}
    for f in fields(HookConfig):
        value = getattr(cfg, f.name)
        if f.name in ("warnings", "source") or value is None:
            continue
        table[f.name] = list(value) if isinstance(value, tuple) else value
    return tomli_w.dumps({"hook": table})
