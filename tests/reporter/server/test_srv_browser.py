"""The web UI in a real headless browser (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from srv_helpers import Serve, ccpp_elements, make_archive, upload

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
EVIL = "<script>window.__pwned = 1</script><img src=x onerror=window.__pwned=2>"


@pytest.fixture()
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("Debian's chromium is not installed (.ci/deps installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.mark.slow
def test_ui_in_a_browser(db_url: str, tmp_path: Path, browser: Any) -> None:
    server = Serve(tmp_path / "data", db=db_url, extra=["--rate-limit", "0"])
    try:
        with httpx.Client(timeout=60) as client:
            for i in range(3):  # bucket 1: three reports from three hosts
                assert upload(client, server.url, make_archive(ccpp_elements(1, host=f"web-{i}", unique=str(i))), token=server.token).status_code == 201
            assert upload(client, server.url, make_archive(ccpp_elements(2, host="db-1", reason=EVIL)), token=server.token).status_code == 201
            faf = client.post(f"{server.url}/faf/reports/new/", files={"file": ("*buffer*", (
                Path(os.environ.get("CRASHKIT_FIXTURES", Path(__file__).resolve().parents[4] / "shared" / "fixtures"))
                / "satyr-ureport" / "ureport-1").read_bytes())}, headers=server.auth())
            assert faf.status_code == 202

        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

        page.goto(server.url + "/")
        rows = page.locator("#bucket-table tbody tr")
        assert rows.count() == 3
        page.screenshot(path=str(tmp_path / "buckets.png"), full_page=True)

        # sort by count, descending: the three-report bucket first
        page.click("th a[data-col=count]")
        page.wait_for_load_state()
        counts = [int(t) for t in page.locator("#bucket-table td.count").all_inner_texts()]
        if counts != sorted(counts, reverse=True):
            page.click("th a[data-col=count]")
            page.wait_for_load_state()
            counts = [int(t) for t in page.locator("#bucket-table td.count").all_inner_texts()]
        assert counts == sorted(counts, reverse=True) and counts[0] == 3
        page.click("th a[data-col=count]")
        page.wait_for_load_state()
        assert [int(t) for t in page.locator("#bucket-table td.count").all_inner_texts()] == sorted(counts)

        # filters: host, then kind (select auto-submits through /static/app.js), then text
        page.goto(server.url + "/")
        page.fill("input[name=host]", "db-1")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        assert rows.count() == 1 and "<script>" in page.locator("td.title").inner_text()
        page.goto(server.url + "/")
        page.select_option("select[name=kind]", "core")
        page.wait_for_url("**kind=core**")
        assert rows.count() == 3
        page.goto(server.url + "/?q=terminated")
        assert rows.count() == 1
        page.screenshot(path=str(tmp_path / "filtered.png"), full_page=True)

        # the reason with <script> renders as text on the bucket and report pages, and never runs
        page.goto(server.url + "/?host=db-1")
        page.click("td.title a")
        page.wait_for_load_state()
        assert EVIL in page.locator("h1.bucket-title").inner_text()
        assert page.locator("svg.chart").count() == 1
        page.screenshot(path=str(tmp_path / "bucket.png"), full_page=True)
        page.click("h2 a[href^='/reports/']")
        page.wait_for_load_state()
        assert EVIL in page.locator("p.reason").inner_text()
        assert page.locator("a.download").count() == 1
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        assert page.evaluate("window.__pwned === undefined")
        assert dialogs == [] and errors == [], errors
        assert all((tmp_path / n).stat().st_size > 1000 for n in ("buckets.png", "filtered.png", "bucket.png", "report.png"))
    finally:
        server.stop()
