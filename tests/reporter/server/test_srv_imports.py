"""``crashkit`` loads the service only when ``serve`` runs; the crash hook never imports it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from srv_helpers import REPO

HEAVY = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "jinja2", "psycopg", "boto3", "multipart",
         "python_multipart", "pydantic")


def _modules(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(REPO)!r}); {code}; "
                          "print(' '.join(sorted(sys.modules)))"], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_crashkit_parser_does_not_load_the_service() -> None:
    mods = _modules("import collectors.cli; collectors.cli.build_parser()")
    assert "reporter.server.cli" in mods
    assert not {m for m in mods if m.split(".")[0] in HEAVY}
    assert not {m for m in mods if m.startswith("reporter.server.") and m != "reporter.server.cli"}


def test_crash_hook_does_not_import_the_service() -> None:
    mods = _modules("import collectors.corehook.hook")
    assert not {m for m in mods if m.startswith("reporter.server") or m.split(".")[0] in HEAVY}


def test_serve_help() -> None:
    out = subprocess.run([sys.executable, "-m", "collectors.cli", "serve", "--help"], capture_output=True, text=True,
                         cwd=REPO)
    assert out.returncode == 0 and "--token-file" in out.stdout and "127.0.0.1" in out.stdout


def test_bad_option_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = subprocess.run([sys.executable, "-m", "collectors.cli", "serve", "--db", "mysql://x/y", "--data", str(data)],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "unsupported database URL" in out.stderr
    assert not data.exists()    # nothing created for a bad option
