"""Fixtures of the reporter tests: a real ``crashkit serve`` per session, an isolated environment."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rr_helpers import Serve  # noqa: E402

from rr_helpers import TOKEN  # noqa: E402,F401 - the upload token of the serve fixture


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No host configuration, a private outbox, no reporter settings from the environment."""
    monkeypatch.setenv("CRASHKIT_CONFIG", str(tmp_path / "no-crashkit.toml"))
    monkeypatch.setenv("CRASHKIT_OUTBOX", str(tmp_path / "outbox"))
    for name in ("Upload_URL", "Upload_Username", "Upload_Password", "uReport_URL", "uReport_HTTPAuth",
                 "Sentry_DSN", "SENTRY_DSN", "EXCLUDE_FROM_REPORT", "LIBREPORT_WORKFLOW", "http_proxy",
                 "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return tmp_path / "outbox"


@pytest.fixture(scope="session")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """``crashkit serve`` on 127.0.0.1 with SQLite, uploads needing :data:`TOKEN`: one for the
    session (for each pytest-xdist worker), so tests count what they added (``before + 1``)
    and make their reports unique, never assuming an empty server."""
    root = tmp_path_factory.mktemp("serve")
    tokens = root / "tokens"
    tokens.write_text(f"{TOKEN} test-host\n")
    srv = Serve(root / "data", token_file=tokens, extra=["--rate-limit", "0"])
    try:
        yield srv
    finally:
        srv.stop()
