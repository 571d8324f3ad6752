"""Tokens and rate limits.

Upload tokens come from ``--token-file`` (one token a line, optionally followed by a label
such as a host name; ``#`` comments). The file is re-read on SIGHUP and, so that every
worker of ``--workers N`` follows it too, whenever its mtime/size/inode change (checked at
most once a second). A token arrives as ``Authorization: Bearer TOKEN`` or as HTTP basic
auth with the token as the password (or as the user name when the password is empty), which
is what libreport's ``reporter-upload`` and ``reporter-ureport`` send for URL credentials.
Tokens are compared as SHA-256 digests with :func:`hmac.compare_digest`, against every
configured token, so neither a prefix nor the position of a match shows in the timing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import stat
import threading
import time
from dataclasses import dataclass

from reporter.server.errors import ConfigError

log = logging.getLogger("crashkit.serve")
RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Token:
    """One configured token: its digest and the label reports record (never the token)."""

    digest: bytes
    label: str


def parse_token_file(text: str) -> list[Token]:
    """Tokens of a token file's text (blank lines and ``#`` comments skipped)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        token, _, label = line.partition(" ")
        digest = hashlib.sha256(token.encode()).digest()
        out.append(Token(digest, label.strip()[:64] or "token-" + digest.hex()[:8]))
    return out


GENERATED_HEADER = ("# Upload tokens of this crashkit serve, one a line: TOKEN [LABEL]. Generated on first start\n"
                    "# because no --token-file was given; add, remove or rotate tokens here, then SIGHUP.\n")


def ensure_token_file(path: str) -> bool:
    """Create *path* with one random token (mode 0600) unless it exists; True if it was created.

    The file appears complete or not at all (written aside, then hard-linked into place), so
    two services starting on one data directory agree on the token.
    """
    if os.path.exists(path):
        return False
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o750, exist_ok=True)
    aside = os.path.join(directory, f".upload-tokens.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(GENERATED_HEADER + secrets.token_urlsafe(32) + " default\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(aside, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(aside)


class TokenSet:
    """The tokens of one file, reloaded when it changes or on :meth:`request_reload`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._tokens: list[Token] = []
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self._reload_requested = False
        self._lock = threading.Lock()
        self.reload(strict=True)

    def _stat(self) -> tuple[int, int, int]:
        st = os.stat(self.path)
        return st.st_ino, st.st_size, st.st_mtime_ns

    def reload(self, *, strict: bool = False) -> None:
        """Read the file again; a file that became unreadable keeps the previous tokens."""
        try:
            stamp = self._stat()
            with open(self.path, encoding="utf-8") as f:
                tokens = parse_token_file(f.read())
        except (OSError, UnicodeDecodeError) as exc:
            if strict:
                raise ConfigError(f"token file {self.path}: {exc}") from None
            log.warning("token file %s not re-read: %s", self.path, exc)
            return
        if not tokens:
            if strict:
                raise ConfigError(f"token file {self.path} has no token: every upload would be refused")
            log.warning("token file %s has no token now: every request it guards gets 401", self.path)
        if _mode(self.path) & stat.S_IROTH:
            log.warning("token file %s is readable by every user", self.path)
        with self._lock:
            self._tokens, self._stamp = tokens, stamp
        log.info("token file %s: %d tokens", self.path, len(tokens))

    def request_reload(self) -> None:
        """Called from the SIGHUP handler: reload at the next check (not inside the handler)."""
        self._reload_requested = True

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if not self._reload_requested and now - self._checked < RECHECK_SECONDS:
            return
        self._checked = now
        try:
            changed = self._stat() != self._stamp
        except OSError:
            changed = False
        if changed or self._reload_requested:
            self._reload_requested = False
            self.reload()

    def match(self, presented: str | None) -> str | None:
        """The label of *presented* if it is a configured token, else None (constant time per token)."""
        self._maybe_reload()
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found: str | None = None
        with self._lock:
            tokens = self._tokens
        for token in tokens:
            if hmac.compare_digest(digest, token.digest) and found is None:
                found = token.label
        return found

    def __len__(self) -> int:
        return len(self._tokens)


def _mode(path: str) -> int:
    """The permission bits of *path* (0 when it cannot be read)."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        return 0


def presented_token(authorization: str | None) -> str | None:
    """The token in an ``Authorization`` header: Bearer, or basic auth's password (else user)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "bearer":
        return value or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8", "surrogateescape")
        except ValueError:
            return None
        user, _, password = decoded.partition(":")
        return password or user or None
    return None


class RateLimiter:
    """A token bucket per credential label: *rate* requests a second, bursts of *burst*."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, label: str, now: float | None = None) -> float | None:
        """Spend one request; None if allowed, else the seconds to wait (for ``Retry-After``)."""
        if self.rate <= 0:
            return None
        now = time.monotonic() if now is None else now
        with self._lock:
            level, stamp = self._state.get(label, (float(self.burst), now))
            level = min(float(self.burst), level + (now - stamp) * self.rate)
            if level >= 1.0:
                self._state[label] = (level - 1.0, now)
                return None
            self._state[label] = (level, now)
            return (1.0 - level) / self.rate
