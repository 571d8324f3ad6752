"""HTTP over a unix socket with requests (the Docker and libpod APIs), through a transport
adapter whose one connection pool dials the socket instead of a host."""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool

from collectors.errors import StateError

BASE = "http+unix://localhost"
MAX_BODY = 64 << 20


class _UnixConnection(HTTPConnection):
    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = socket_path
        self._dial_timeout = timeout

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self._dial_timeout)
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _UnixPool(HTTPConnectionPool):
    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._socket_path = socket_path
        self._dial_timeout = timeout

    def _new_conn(self) -> _UnixConnection:
        return _UnixConnection(self._socket_path, self._dial_timeout)


class UnixSocketAdapter(HTTPAdapter):
    """Every request through this adapter goes to one unix socket."""

    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__()
        self._pool = _UnixPool(socket_path, timeout)

    def get_connection_with_tls_context(self, request: requests.PreparedRequest, verify: bool | str | None,
                                        proxies: Mapping[str, str] | None = None,
                                        cert: Any = None) -> HTTPConnectionPool:
        return self._pool

    def close(self) -> None:
        self._pool.close()
        super().close()


class UnixClient:
    """A JSON client of one API socket (a session kept open for many requests)."""

    def __init__(self, socket_path: str, timeout: float) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self.session = requests.Session()
        self.session.mount("http+unix://", UnixSocketAdapter(socket_path, timeout))

    def __enter__(self) -> UnixClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    def get_json(self, path: str) -> Any:
        """GET *path*; the decoded JSON body. Errors become one-line :class:`StateError`."""
        try:
            resp = self.session.get(BASE + path, timeout=self.timeout, stream=True)
            body = resp.raw.read(MAX_BODY + 1, decode_content=True)
        except (requests.RequestException, OSError) as exc:
            raise StateError(f"{self.socket_path}: {_reason(exc)}") from exc
        if len(body) > MAX_BODY:
            raise StateError(f"{self.socket_path}: GET {path}: reply over {MAX_BODY} bytes")
        if resp.status_code != 200:
            raise StateError(f"{self.socket_path}: GET {path}: HTTP {resp.status_code}")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise StateError(f"{self.socket_path}: GET {path}: malformed JSON: {exc}") from exc


def _reason(exc: BaseException) -> str:
    """The innermost reason of a requests/urllib3 error chain, on one line."""
    while exc.__context__ is not None and not isinstance(exc, (OSError, TimeoutError)):
        exc = exc.__context__
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split())[:200] or type(exc).__name__
