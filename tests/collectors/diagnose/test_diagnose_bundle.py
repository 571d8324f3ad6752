"""``crashkit diagnose`` end to end on this host, with a spool holding a real crash (through a
private hook installation and the kernel), a problem directory whose reason is markup and
whose elements hold secrets, and a corrupt directory; then the HTML report in Debian's
chromium driven by Playwright."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from diaghelpers import EVIL, add_corrupt_dir, add_hostile_dir, crashkit, manifest, read_bundle

from testlib import Programs, require_core_pattern

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, programs: Programs) -> Iterator[dict[str, Any]]:
    require_core_pattern()
    from hookenv import HookEnv

    hook = HookEnv()
    try:
        hook.configure(postprocess=True)
        crasher = hook.program(programs.crasher(), "crasher")
        hook.crash([crasher, "segv"])
        (real,) = hook.dirs()
        hook.wait_element(real, "core_backtrace")
        add_hostile_dir(hook.spool, (real / "core_backtrace").read_text())
        add_corrupt_dir(hook.spool)
        out = tmp_path_factory.mktemp("bundle")
        res = crashkit("diagnose", "-o", str(out / "b.tar.zst"), "--html", str(out / "report.html"),
                       "--spool", str(hook.spool), "--since", "2020-01-01")
        yield {"res": res, "out": out, "real": real, "members": read_bundle(out / "b.tar.zst")}
    finally:
        hook.cleanup()


def test_bundle_and_manifest(run: dict[str, Any]) -> None:
    res, out, members = run["res"], run["out"], run["members"]
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert f"bundle: {out / 'b.tar.zst'}" in res.stdout
    assert sorted(os.listdir(out)) == ["b.tar.zst", "report.html"]   # no temporary left
    assert (os.stat(out / "b.tar.zst").st_mode & 0o777) == 0o600
    m = manifest(members)
    assert {s["name"] for s in m["sections"]} >= {"host", "system", "kernel", "storage_net", "logs", "state",
                                                  "checks", "kernel_reports", "problems", "hook"}
    for s in m["sections"]:
        assert s["status"] == "ok", s
        assert s["duration"] <= s["time_limit"]
    for item in m["items"]:
        assert {"path", "section", "source", "size", "sha256", "duration", "error"} <= set(item)
        if item["path"] == "report.html":
            data = members["report.html"]
        elif item["sha256"] is None:
            assert item["error"], item
            continue
        else:
            data = members[f"sections/{item['path']}"]
        assert len(data) == item["size"] or item["section"] in ("problems",) or m["cleaned"]
        if not m["cleaned"]:
            assert hashlib.sha256(data).hexdigest() == item["sha256"] or b"PRIVATE KEY" in data
    checks = json.loads(members["sections/checks/checks.json"])["checks"]
    assert checks and all(c["status"] in ("pass", "warn", "fail", "skip", "error") for c in checks)
    # The bundle is the job: 0 even where checks warned (they lead the report instead).
    assert res.returncode == 0
    assert (out / "report.html").read_bytes() == members["report.html"]


def test_problem_directories(run: dict[str, Any]) -> None:
    members = run["members"]
    probs = json.loads(members["sections/problems/problems.json"])
    names = {p["name"]: p for p in probs["problems"]}
    real = names[run["real"].name]
    assert real["signal"] == 11 and real["frames"], real
    assert any(f["function"] == "main" for f in real["frames"])
    assert probs["corrupt"] == [{"name": "ccpp-corrupt", "reason": "no 'time' element"}]
    hostile = json.loads(members["sections/problems/ccpp-2026-12-01-10:00:00.1-4242.json"])
    assert "environ" not in hostile["elements"] and hostile["omitted"] == ["environ"]
    blob = b"".join(members.values())
    assert b"envsecret123" not in blob                      # never: environments
    assert b"b3BlbnNzaC1rZXktdjEAAAAABG5vbmU" not in blob    # never: private keys
    assert b"[removed by crashkit]" in members["sections/problems/ccpp-2026-12-01-10:00:00.1-4242.json"]
    assert not any("shadow" in name for name in members)


@pytest.mark.slow
def test_report_in_a_browser(run: dict[str, Any], tmp_path: Path) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("Debian's chromium is not installed (.ci/deps installs it)")
    from playwright.sync_api import sync_playwright

    html = run["out"] / "report.html"
    checks = json.loads(run["members"]["sections/checks/checks.json"])["checks"]
    failed = [c["id"] for c in checks if c["status"] in ("fail", "warn", "error")]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            requests: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(html.as_uri())
            assert errors == []
            assert requests == [html.as_uri()]          # self-contained: nothing else is loaded
            rows = page.locator("#summary tr.check-row")
            assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.id)")) == sorted(failed)
            statuses = rows.evaluate_all("rs => rs.map(r => r.dataset.status)")
            order = {"fail": 0, "error": 1, "warn": 2}
            assert statuses == sorted(statuses, key=order.__getitem__)    # worst first
            crashes = page.locator("#crashes .crash")
            real = crashes.filter(has_text=run["real"].name)
            assert "main" in real.locator("ol.frames").inner_text()
            hostile = crashes.filter(has_text="ccpp-2026-12-01-10:00:00.1-4242")
            assert EVIL in hostile.inner_text()          # the markup is text
            assert page.evaluate("window.__pwned") is None
            assert page.locator("#crashes script, #crashes img").count() == 0
            assert page.locator("#timeline svg circle.mark").count() >= 2
            assert "ccpp-corrupt" in page.locator("#crashes tr.corrupt").inner_text()
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            assert (tmp_path / "report.png").stat().st_size > 10_000
        finally:
            browser.close()
