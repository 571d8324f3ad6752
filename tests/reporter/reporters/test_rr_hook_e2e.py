"""End to end: a real crash through the kernel and the installed crashkit-hook, whose own
post-processing runs post-create with ``[report]`` from its hook.toml, lands on a real
``crashkit serve`` (token required); checked through the service's API."""

from __future__ import annotations

import os
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


@pytest.mark.slow
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


def test_locked_memory_crash_is_not_uploaded(hook: HookEnv, serve: Serve) -> None:
    """A process that locked its memory (``VmLck``: it guards secrets) is marked not-reportable
    by the hook; post-create then sends its uReport (no memory in it) but no bundle."""
    hook.configure(postprocess=True, crash_loop_limit=0)
    with open(hook.paths.hook_config, "a") as f:
        f.write(f'\n[report]\npost_create = true\n[report.upload]\nurl = "{serve.url}/upload/"\n'
                f'password = "{TOKEN}"\n[report.ureport]\nurl = "{serve.url}/faf"\n'
                f'http_auth = "host:{TOKEN}"\n')
    python = hook.program(Path(os.path.realpath(sys.executable)), "locked_py")
    script = ("import ctypes, os, signal\n"
              "assert ctypes.CDLL(None, use_errno=True).mlockall(1) == 0\n"  # MCL_CURRENT
              "os.kill(os.getpid(), signal.SIGSEGV)\n")
    before = httpx.get(f"{serve.url}/api/v1/buckets", params={"q": "locked_py"}).json()["total"]
    hook.crash([python, "-I", "-S", "-c", script])
    [d] = hook.dirs()
    assert "locked memory" in element(d, "not-reportable")
    assert wait_for(lambda: f"post-create on {d}: exit 0" in hook.log_text(), timeout=120), hook.log_text()
    lines = element(d, "reported_to").splitlines()
    assert any(line.startswith("uReport: BTHASH=") for line in lines), lines
    assert not any(line.startswith("upload:") for line in lines), lines
    assert "reporter-crashkit: not reportable: The process had locked memory" in element(d, "event_log")
    listed = httpx.get(f"{serve.url}/api/v1/buckets", params={"q": "locked_py"}).json()
    bucket = httpx.get(f"{serve.url}/api/v1/buckets/{listed['buckets'][0]['id']}").json()
    assert listed["total"] == before + 1
    assert [r["source"] for r in bucket["reports"]] == ["ureport"], bucket  # no bundle
