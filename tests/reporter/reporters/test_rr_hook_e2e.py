"""End to end: a real crash through the kernel and the installed crashkit-hook, whose own
post-processing runs post-create with ``[report]`` from its hook.toml, lands on a real
``crashkit serve`` (token required); checked through the service's API."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from rr_helpers import TOKEN, Serve

from testlib import Programs, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "collectors" / "corehook"))

from hookenv import HookEnv, element, hook_fixture  # noqa: E402,F401 - the hook fixture

pytestmark = pytest.mark.root


def _reported(d: Path) -> bool:
    """Both reporters of the chain wrote their line (upload first, then uReport)."""
    try:
        text = (d / "reported_to").read_text()
    except OSError:
        return False
    return "upload: URL=" in text and "uReport: BTHASH=" in text


def test_crash_reported_by_the_hooks_post_create(hook: HookEnv, programs: Programs, serve: Serve) -> None:
    hook.configure(postprocess=True, crash_loop_limit=0)
    with open(hook.paths.hook_config, "a") as f:  # what an admin adds to the hook's config
        f.write(f'\n[report]\npost_create = true\n[report.upload]\nurl = "{serve.url}/upload/"\n'
                f'password = "{TOKEN}"\n[report.ureport]\nurl = "{serve.url}/faf"\n'
                f'http_auth = "host:{TOKEN}"\n')
    crasher = hook.program(programs.crasher(), "e2e_crasher")
    before = httpx.get(f"{serve.url}/api/v1/buckets", params={"q": "e2e_crasher"}).json()["total"]
    hook.crash([crasher, "segv"])
    [d] = hook.dirs()
    assert wait_for(lambda: _reported(d), timeout=90), hook.log_text() + "\n" + (
        element(d, "event_log") if (d / "event_log").exists() else "(no event_log)")
    assert wait_for(lambda: f"post-create on {d}: exit 0" in hook.log_text(), timeout=30), hook.log_text()
    lines = element(d, "reported_to").splitlines()
    assert f"upload: URL={serve.url}/upload/{d.name}.tar.gz" in lines
    assert any(line.startswith("uReport: BTHASH=") for line in lines), lines
    assert TOKEN not in element(d, "reported_to") + element(d, "event_log")
    listed = httpx.get(f"{serve.url}/api/v1/buckets", params={"q": "e2e_crasher"}).json()
    assert listed["total"] == before + 1, listed
    bucket = httpx.get(f"{serve.url}/api/v1/buckets/{listed['buckets'][0]['id']}").json()
    assert bucket["executable"] == str(crasher)
    assert bucket["duphash"] == element(d, "duphash").strip()
    assert bucket["crash_function"] == element(d, "crash_function").strip()
    assert bucket["stored_reports"] >= 1
