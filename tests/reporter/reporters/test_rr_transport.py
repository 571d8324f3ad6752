"""The reporters' transport and what leaves the host: TLS verification (on unless
``--insecure``, a CA file trusted), a forward proxy from the environment, a server that never
answers (queued, not hung), the retry delays, libreport's exclusion lists and redaction in
the archive the server stores, and a uReport server's solution turning a problem
not-reportable so that the upload refuses it afterwards."""

from __future__ import annotations

import http.server
import io
import json
import os
import socket
import ssl
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from rr_helpers import TOKEN, Serve, copy_problem, read_body

from reporter.dumpdir import DumpDir
from reporter.outbox import BASE_DELAY, MAX_DELAY, Entry, Outbox, next_delay
from reporter.reporters import delivery, reportable, upload, ureport
from reporter.reporters.exclude import Exclusions


class _Sink(http.server.ThreadingHTTPServer):
    """Answers every PUT/POST with *reply* (JSON) and keeps the bodies."""

    daemon_threads = True

    def __init__(self, reply: dict[str, Any] | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.bodies: list[tuple[str, bytes]] = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                sink.bodies.append((self.path, read_body(self)))
                data = json.dumps(reply or {"ok": True}).encode()
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_PUT = do_POST = _answer

        super().__init__(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl)."""
    root = tmp_path_factory.mktemp("tls")
    crt, key = root / "server.crt", root / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(crt)], check=True, capture_output=True, timeout=120)
    return crt, key


@pytest.fixture
def https_sink(cert: tuple[Path, Path]) -> Iterator[_Sink]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    sink = _Sink(tls=ctx)
    try:
        yield sink
    finally:
        sink.stop()


def test_tls_verified_unless_insecure(https_sink: _Sink, cert: tuple[Path, Path], fixtures_dir: Path,
                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = copy_problem(fixtures_dir, "satyr-problem-dir", tmp_path)
    url = f"{https_sink.url}/upload/"
    assert upload.main(["-d", str(d), "-u", url]) == 1  # self-signed: final, never queued
    box = Outbox(os.environ["CRASHKIT_OUTBOX"])
    assert box.entries() == [] and "TLS error" in box.entries("failed")[0].last_error
    assert https_sink.bodies == [] and not (d / "reported_to").exists()
    assert upload.main(["-d", str(d), "-u", url, "--insecure"]) == 0
    cfg = tmp_path / "crashkit.toml"
    cfg.write_text(f'[report.upload]\nurl = "{url}"\nca_file = "{cert[0]}"\n')
    monkeypatch.setenv("CRASHKIT_CONFIG", str(cfg))
    assert upload.main(["-d", str(d)]) == 0  # verified against the CA file
    assert len(https_sink.bodies) == 2
    with tarfile.open(fileobj=io.BytesIO(https_sink.bodies[-1][1]), mode="r:gz") as tf:
        assert "core_backtrace" in tf.getnames()


class _ForwardProxy(http.server.ThreadingHTTPServer):
    """A forward HTTP proxy: absolute-form requests are sent on to their host."""

    daemon_threads = True

    def __init__(self) -> None:
        self.seen: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                proxy.seen.append(f"{self.command} {self.path}")
                target = urlsplit(self.path)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("transfer-encoding", "content-length", "proxy-connection", "host")}
                with httpx.Client(trust_env=False, timeout=60) as client:  # not through ourselves
                    resp = client.request(self.command, self.path, content=read_body(self), headers=headers)
                assert target.hostname == "127.0.0.1"
                self.send_response(resp.status_code)
                self.send_header("Content-Type", resp.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

            do_PUT = do_POST = _forward

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.mark.slow
def test_upload_through_a_proxy_from_the_environment(serve: Serve, fixtures_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = _ForwardProxy()
    try:
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("http_proxy", proxy.url)
        monkeypatch.setenv("Upload_Password", TOKEN)
        d = copy_problem(fixtures_dir, "satyr-problem-dir", tmp_path)
        with DumpDir.open(str(d)) as dd:
            dd.save_text("nonce", "proxied")
        assert upload.main(["-d", str(d), "-u", f"{serve.url}/upload/"]) == 0
        assert proxy.seen == [f"PUT {serve.url}/upload/satyr-problem-dir.tar.gz"]
        assert (d / "reported_to").read_text().startswith(f"upload: URL={serve.url}/upload/")
    finally:
        proxy.shutdown()
        proxy.server_close()


@pytest.mark.slow
def test_a_server_that_never_answers_is_a_retry() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts (the kernel does), never reads or answers
    try:
        entry = Entry(id="t1", kind="upload", url=f"http://127.0.0.1:{silent.getsockname()[1]}/x", method="PUT")
        out = delivery.send(entry, b"x" * 1000, {}, timeout=(2.0, 1.0))
    finally:
        silent.close()
    assert out.state == "retry" and "timed out" in out.message


def test_retry_delays_back_off_with_jitter() -> None:
    for attempts in range(1, 12):
        base = min(MAX_DELAY, BASE_DELAY * 2 ** (attempts - 1))
        assert next_delay(attempts, rng=lambda: 0.0) == base * 0.5
        assert next_delay(attempts, rng=lambda: 0.999) == pytest.approx(base * 1.499)
    spread = {round(next_delay(3), 3) for _ in range(50)}
    assert len(spread) > 40 and all(0.5 * 4 * BASE_DELAY <= s < 1.5 * 4 * BASE_DELAY for s in spread)
    assert next_delay(1, retry_after=3600.0) >= 3600.0  # the server's Retry-After is a floor
    assert next_delay(40) < 1.5 * MAX_DELAY


def test_exclusion_lists_and_redaction_in_the_stored_archive(serve: Serve, fixtures_dir: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "libreport.conf"
    conf.write_text("AlwaysExcludedElements = ssh_config, *.secret\n")
    assert Exclusions.for_reporter(["maps"], {"EXCLUDE_FROM_REPORT": "open_fds, environ"}, str(conf)).patterns \
        == ("open_fds", "environ", "ssh_config", "*.secret", "maps")
    d = copy_problem(fixtures_dir, "satyr-problem-dir", tmp_path)
    with DumpDir.open(str(d)) as dd:
        dd.save_text("nonce", "exclusions")
        dd.save_text("open_fds", "0:/dev/null\n")
        dd.save_text("cmdline", "/usr/bin/tool --password=hunter2 --user bob")
        dd.save_text("app.conf", "[db]\npassword: s3cret\nurl = https://bob:pw123@db.example/\n")
    monkeypatch.setenv("EXCLUDE_FROM_REPORT", "open_fds")
    monkeypatch.setenv("Upload_Password", TOKEN)
    assert upload.main(["-d", str(d), "-u", f"{serve.url}/upload/", "--exclude", "os_*"]) == 0
    buckets = httpx.get(f"{serve.url}/api/v1/buckets?limit=1000").json()["buckets"]
    reports = [r for b in buckets for r in httpx.get(f"{serve.url}/api/v1/buckets/{b['id']}").json()["reports"]]
    stored = None
    for r in reports:  # the server is the session's: uReports (JSON) of other tests are there too
        data = httpx.get(f"{serve.url}/api/v1/reports/{r['id']}/bundle").content
        if not data.startswith(b"\x1f\x8b"):
            continue
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
            names = tf.getnames()
            if "nonce" in names and tf.extractfile("nonce").read() == b"exclusions":  # type: ignore[union-attr]
                stored = {n: tf.extractfile(n).read().decode("utf-8", "replace") for n in names}  # type: ignore[union-attr]
    assert stored is not None
    assert "open_fds" not in stored and not any(n.startswith("os_") for n in stored)
    assert "core_backtrace" in stored and "cmdline" in stored
    text = stored["cmdline"] + stored["app.conf"]
    assert "hunter2" not in text and "s3cret" not in text and "pw123" not in text
    assert "--user bob" in stored["cmdline"]


def test_ureport_solution_makes_the_problem_not_reportable(fixtures_dir: Path, tmp_path: Path) -> None:
    faf = _Sink({"result": False, "bthash": "ab" * 20,
                 "solutions": [{"cause": "a known bug", "note": "Update the package to 1.2-3.",
                                "url": "https://bugs.example/42"}]})
    try:
        d = copy_problem(fixtures_dir, "satyr-problem-dir", tmp_path)
        assert ureport.main(["-d", str(d), "-u", f"{faf.url}/faf"]) == 0
        assert [p for p, _ in faf.bodies] == ["/faf/reports/new/"]
        assert reportable.reason(str(d)) == "Your problem seems to be caused by a known bug\n\nUpdate the package to 1.2-3."
        assert "a known bug: URL=https://bugs.example/42" in (d / "reported_to").read_text()
        assert upload.main(["-d", str(d), "-u", f"{faf.url}/upload/"]) == reportable.EXIT_NOT_REPORTABLE
        assert len(faf.bodies) == 1
    finally:
        faf.stop()


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate it signed, and a
    self-signed client certificate no one trusts (openssl)."""
    root = tmp_path_factory.mktemp("pki")
    p = {n: root / n for n in ("ca.key", "ca.crt", "srv.key", "srv.csr", "srv.crt", "cli.key", "cli.csr",
                               "cli.crt", "rogue.key", "rogue.crt", "san.ext")}
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
             "-keyout", str(p["ca.key"]), "-out", str(p["ca.crt"]))
    p["san.ext"].write_text("subjectAltName=IP:127.0.0.1\n")
    for who, cn in (("srv", "127.0.0.1"), ("cli", "host-17")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", str(p[f"{who}.key"]),
                 "-out", str(p[f"{who}.csr"]))
        _openssl("x509", "-req", "-in", str(p[f"{who}.csr"]), "-CA", str(p["ca.crt"]), "-CAkey", str(p["ca.key"]),
                 "-CAcreateserial", "-days", "2", "-out", str(p[f"{who}.crt"]),
                 *(["-extfile", str(p["san.ext"])] if who == "srv" else []))
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=rogue",
             "-keyout", str(p["rogue.key"]), "-out", str(p["rogue.crt"]))
    return p


def _client_cert_server(pki: dict[str, Path], mode: ssl.VerifyMode) -> tuple[_Sink, list[Any]]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki["srv.crt"]), str(pki["srv.key"]))
    ctx.load_verify_locations(str(pki["ca.crt"]))
    ctx.verify_mode = mode
    peers: list[Any] = []
    sink = _Sink({"result": False, "bthash": "cd" * 20}, tls=ctx)
    handler = sink.RequestHandlerClass
    original = handler._answer  # type: ignore[attr-defined]

    def answer(self: http.server.BaseHTTPRequestHandler) -> None:
        peers.append(self.connection.getpeercert())  # type: ignore[attr-defined]
        original(self)

    handler.do_POST = answer  # type: ignore[attr-defined]
    return sink, peers


@pytest.mark.slow
def test_ureport_client_certificate(pki: dict[str, Path], fixtures_dir: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "crashkit.toml"
    cfg.write_text(f'[report.ureport]\nca_file = "{pki["ca.crt"]}"\n')
    monkeypatch.setenv("CRASHKIT_CONFIG", str(cfg))
    sink, peers = _client_cert_server(pki, ssl.CERT_REQUIRED)
    try:
        d = copy_problem(fixtures_dir, "satyr-problem-dir", tmp_path)
        monkeypatch.setenv("uReport_SSLClientAuth", f"{pki['cli.crt']}:{pki['cli.key']}")
        assert ureport.main(["-d", str(d), "-u", f"{sink.url}/faf"]) == 0
        assert [dict(x[0] for x in p["subject"])["commonName"] for p in peers] == ["host-17"]
        # without a certificate this server refuses the handshake: final, nothing queued
        monkeypatch.delenv("uReport_SSLClientAuth")
        assert ureport.main(["-d", str(d), "-u", f"{sink.url}/faf"]) == 1
        assert len(peers) == 1
    finally:
        sink.stop()
    # a server that asks for a certificate but does not require one: the refused (untrusted)
    # certificate is dropped for one more, unauthenticated try, as libreport does
    sink, peers = _client_cert_server(pki, ssl.CERT_OPTIONAL)
    try:
        d2 = copy_problem(fixtures_dir, "satyr-problem-dir", tmp_path / "2")
        monkeypatch.setenv("uReport_SSLClientAuth", f"{pki['rogue.crt']}:{pki['rogue.key']}")
        capfd.readouterr()
        assert ureport.main(["-d", str(d2), "-u", f"{sink.url}/faf"]) == 0
        assert "Retrying unauthenticated" in capfd.readouterr().err
        assert peers == [{}] or peers == [None]
    finally:
        sink.stop()
