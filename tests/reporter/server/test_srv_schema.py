"""schemathesis against the running service's own OpenAPI schema (property-based API testing)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
import os
import subprocess
import sys

import httpx
import pytest
from srv_helpers import Serve, ccpp_elements, make_archive, upload


@pytest.fixture(scope="module")
def running(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    server = Serve(tmp_path_factory.mktemp("schema") / "data", db=module_db_url, extra=["--rate-limit", "0"])
    with httpx.Client(timeout=60) as client:  # something to find: ids 1 and 2 exist
        for i in range(2):
            upload(client, server.url, make_archive(ccpp_elements(i)), token=server.token)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_api_conforms_to_its_schema(running: Serve, tmp_path: Path) -> None:
    """``schemathesis run`` (its CLI: the pytest plugin does not load under pytest 9) with every default
    check: no 5xx, documented status codes, content types, headers and response schemas."""
    cli = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [str(cli), "run", running.url + "/openapi.json", "--max-examples", "15", "--workers", "2",
         "--phases", "examples,coverage,fuzzing", "--generation-deterministic", "--no-color",
         "--exclude-checks", "positive_data_acceptance", "--header", f"Authorization: Bearer {running.token}"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"})
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert running.alive()


def test_schema_is_valid_openapi(running: Serve, tmp_path: Path) -> None:
    doc = httpx.get(running.url + "/openapi.json").json()
    assert doc["openapi"].startswith("3.") and doc["paths"]
    assert all("/static" not in p and p not in ("/", "/buckets/{bucket_id}") for p in doc["paths"])
