"""reporter-crashkit-sentry: checked against Sentry's own code and servers, not only our reading.

* the event of a real core (gcore of a running sleep, unwound by ``crashkit backtrace``)
  goes through Relay's normalizer (sentry_relay.processing.StoreNormalizer): no ``_meta``,
  no errors;
* every ``debug_id`` equals the one Sentry's ``symbolic`` computes for the same ELF file;
* a loopback endpoint parses the envelope sentry-sdk built (header, event, attachments);
* Bugsink, a Sentry-compatible server started here on 127.0.0.1, stores the event with its
  stack trace and groups by crashkit's duphash.
"""

from __future__ import annotations

import gzip
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rr_helpers import copy_problem, free_port, make_min_dir

from reporter.dumpdir import DumpDir
from reporter.reporters import sentry, sentry_event

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def real_crash(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A problem directory of a real process: gcore of a sleeping ``sleep``, its maps, and the
    core_backtrace/duphash ``crashkit backtrace`` computes from the core."""
    if not shutil.which("gcore"):
        pytest.skip("needs gdb's gcore")
    root = tmp_path_factory.mktemp("crash")
    proc = subprocess.Popen(["sleep", "300"])
    try:
        time.sleep(0.2)
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        subprocess.run(["gcore", "-o", str(root / "core"), str(proc.pid)], check=True, capture_output=True, timeout=120)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    core = root / f"core.{proc.pid}"
    out = subprocess.run([sys.executable, "-m", "collectors.cli", "backtrace", "--json", str(core),
                          "--executable", shutil.which("sleep") or "/bin/sleep"],
                         capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO)},
                         timeout=300)
    bt = json.loads(out.stdout)
    return make_min_dir(root / "spool", "ccpp-sleep", {
        "core_backtrace": json.dumps(bt["core_backtrace"]), "duphash": bt["duphash"],
        "executable": os.path.realpath(shutil.which("sleep") or "/bin/sleep"), "maps": maps,
        "reason": "sleep killed by SIGSEGV", "signal": "11", "kernel": os.uname().release,
        "os_info": Path("/etc/os-release").read_text(), "cmdline": "sleep 300 --password=hunter2",
        "coredump": core.read_bytes()[: 4 << 20]})


def _elements(path: Path) -> dict[str, str]:
    with DumpDir.open(str(path), readonly=True) as dd:
        return {n: dd.load_text(n) for n in dd.list_elements() if n != "coredump"}


def test_relay_keeps_everything_and_symbolic_agrees(real_crash: Path) -> None:
    import symbolic
    from sentry_relay.processing import StoreNormalizer

    event = sentry_event.build(_elements(real_crash), "ab" * 16)
    normalized = StoreNormalizer(project_id=1).normalize_event(json.loads(json.dumps(event)))
    assert "_meta" not in normalized, json.dumps(normalized.get("_meta"), indent=1)
    assert not normalized.get("errors")
    frames = normalized["exception"]["values"][0]["stacktrace"]["frames"]
    assert frames[-1]["instruction_addr"].startswith("0x") and frames[-1]["package"]
    assert normalized["fingerprint"] == ["crashkit", _elements(real_crash)["duphash"]]
    images = event["debug_meta"]["images"]
    assert images and len({i["code_file"] for i in images}) == len(images)
    for image in images:
        obj = next(iter(symbolic.Archive.open(image["code_file"]).iter_objects()))
        assert image["code_id"] == obj.code_id
        assert image["debug_id"] == obj.debug_id
    # caller first: the outermost function (main or __libc_start_main...) before the crashing one
    names = [f.get("function") for f in frames]
    assert names.index(next(n for n in names if n and "main" in n)) < len(names) - 1


class _Envelopes(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"id": "ok"}')


def parse_envelope(data: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes]]]:
    """The envelope format: a JSON header line, then item header lines with ``length`` bytes."""
    head, _, rest = data.partition(b"\n")
    items = []
    while rest:
        line, _, rest = rest.partition(b"\n")
        if not line:
            continue
        header = json.loads(line)
        n = header.get("length")
        if n is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:n], rest[n:]
            rest = rest.removeprefix(b"\n")
        items.append((header, payload))
    return json.loads(head), items


def test_envelope_on_a_loopback_endpoint(real_crash: Path, tmp_path: Path) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Envelopes)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Envelopes.received.clear()
    d = copy_problem(real_crash.parent, real_crash.name, tmp_path)
    try:
        dsn = f"http://publickey42@127.0.0.1:{server.server_address[1]}/7"
        assert sentry.main(["-d", str(d), "--dsn", dsn]) == 0
    finally:
        server.shutdown()
        server.server_close()
    [(headers, body)] = _Envelopes.received
    assert headers["Content-Encoding"] == "gzip" and headers["Content-Type"] == "application/x-sentry-envelope"
    assert "sentry_key=publickey42" in headers["X-Sentry-Auth"]
    head, items = parse_envelope(gzip.decompress(body))
    kinds = [h["type"] for h, _ in items]
    assert kinds[0] == "event" and kinds.count("attachment") >= 3
    event = json.loads(items[0][1])
    assert event["event_id"] == head["event_id"] and event["platform"] == "native"
    assert event["exception"]["values"][0]["mechanism"]["meta"]["signal"] == {"number": 11, "name": "SIGSEGV"}
    assert event["tags"]["executable"].endswith("sleep") and event["sdk"]["name"] == "sentry.python"
    names = {h.get("filename"): p for h, p in items if h["type"] == "attachment"}
    assert names["sleep.core"] == (d / "coredump").read_bytes()
    assert "hunter2" not in names["cmdline.txt"].decode() and "hunter2" not in json.dumps(event)
    line = (d / "reported_to").read_text().strip()
    assert line == f"Sentry: URL=http://127.0.0.1:{server.server_address[1]}/ MSG=event {event['event_id']}"


@pytest.fixture(scope="module")
def bugsink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Bugsink from PyPI on 127.0.0.1 with its own SQLite database; yields (DSN, its dir)."""
    manage = BIN / "bugsink-manage"
    if not manage.exists():
        pytest.skip("bugsink is not installed (pip install bugsink)")
    root = tmp_path_factory.mktemp("bugsink")
    port = free_port()
    subprocess.run([str(BIN / "bugsink-create-conf"), "--template=local", "--host=127.0.0.1", f"--port={port}",
                    "-o", "bugsink_conf.py"], cwd=root, check=True, capture_output=True)
    subprocess.run([str(manage), "migrate", "--noinput"], cwd=root, check=True, capture_output=True, timeout=300)
    dsn = subprocess.run([str(manage), "shell", "-c", "from projects.models import Project;"
                          "print(Project.objects.create(name='crashkit').dsn)"],
                         cwd=root, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    log = open(root / "server.log", "wb")
    proc = subprocess.Popen([str(manage), "runserver", f"127.0.0.1:{port}", "--noreload"], cwd=root,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield dsn, root
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()


def _bugsink_query(root: Path) -> Any:
    code = ("import json; from issues.models import Issue; from events.models import Event;"
            "print(json.dumps([{'issue': str(e.issue_id), 'data': e.get_parsed_data()} for e in Event.objects.all()]))")
    out = subprocess.run([str(BIN / "bugsink-manage"), "shell", "-c", code], cwd=root, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_bugsink_stores_the_stack_and_groups_by_duphash(bugsink: tuple[str, Path], real_crash: Path,
                                                        tmp_path: Path) -> None:
    dsn, root = bugsink
    a = copy_problem(real_crash.parent, real_crash.name, tmp_path / "a")
    b = copy_problem(real_crash.parent, real_crash.name, tmp_path / "b")
    with DumpDir.open(str(b)) as dd:  # another occurrence: other reason and signal, same duphash
        dd.save_text("reason", "sleep killed by SIGABRT")
        dd.save_text("signal", "6")
        bt = json.loads(dd.load_text("core_backtrace"))
        bt["signal"] = 6
        dd.save_text("core_backtrace", json.dumps(bt))
    c = copy_problem(real_crash.parent, real_crash.name, tmp_path / "c")
    with DumpDir.open(str(c)) as dd:
        dd.save_text("duphash", "0" * 40)
    for d in (a, b, c):
        assert sentry.main(["-d", str(d), "--dsn", dsn, "--no-core"]) == 0
    deadline = time.monotonic() + 30
    while len(events := _bugsink_query(root)) < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(events) == 3
    by_type = {e["data"]["exception"]["values"][0]["type"]: e for e in events}
    assert set(by_type) == {"SIGSEGV", "SIGABRT"}
    issues = {e["issue"] for e in events}
    assert len(issues) == 2
    assert by_type["SIGABRT"]["issue"] in {e["issue"] for e in events if e["data"]["fingerprint"][1] != "0" * 40}
    frames = by_type["SIGSEGV"]["data"]["exception"]["values"][0]["stacktrace"]["frames"]
    assert len(frames) >= 2 and all("instruction_addr" in f for f in frames)
