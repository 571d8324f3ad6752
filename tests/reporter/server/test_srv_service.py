"""``crashkit serve`` end to end, on SQLite and PostgreSQL: uploads, FAF, API, auth, limits, bad input."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import signal
import subprocess
import tarfile
import threading
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from srv_helpers import Serve, ccpp_elements, make_archive, upload

from reporter.server.bthash import bthash

TOKEN = "upload-token-1"


@pytest.fixture(scope="module")
def env(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One server per database, with an upload token file; TMPDIR and cwd are watched dirs."""
    root = tmp_path_factory.mktemp("serve")
    tokens = root / "tokens"
    tokens.write_text(f"# fleet tokens\n{TOKEN} host-a\n")
    systmp, cwd = root / "systmp", root / "cwd"
    systmp.mkdir()
    cwd.mkdir()
    server = Serve(root / "data", db=module_db_url, token_file=tokens, cwd=cwd, env={"TMPDIR": str(systmp)},
                   extra=["--rate-limit", "0"])
    try:
        yield {"server": server, "tokens": tokens, "root": root, "systmp": systmp, "cwd": cwd}
    finally:
        server.stop()


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as c:
        yield c


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def buckets(client: httpx.Client, url: str, **params: Any) -> dict[str, Any]:
    r = client.get(f"{url}/api/v1/buckets", params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.mark.slow
def test_bundles_bucketed_and_browsable(env: dict[str, Any], client: httpx.Client) -> None:
    url = env["server"].url
    tag = f"b{time.monotonic_ns()}"
    a1 = make_archive(ccpp_elements(1001, host="alpha", reason=f"victim {tag} one", unique="1"))
    a2 = make_archive(ccpp_elements(1001, host="beta", unique="2"), "xz")
    a3 = make_archive(ccpp_elements(1002, host="alpha", reason=f"other {tag}", unique="3"), "zst")
    r1 = upload(client, url, a1, token=TOKEN)
    assert r1.status_code == 201, r1.text
    r2 = client.post(f"{url}/upload/problem.tar.xz", content=a2, headers=auth())
    assert r2.status_code == 201, r2.text
    r3 = client.post(f"{url}/upload/", files={"file": ("p.tar.zst", a3)}, data={"report_id": f"{tag}-3"}, headers=auth())
    assert r3.status_code == 201, r3.text
    assert r1.json()["bucket_id"] == r2.json()["bucket_id"] != r3.json()["bucket_id"]
    bucket = client.get(f"{url}/api/v1/buckets/{r1.json()['bucket_id']}").json()
    assert bucket["count"] == 2 and bucket["hosts"] == 2 and bucket["kind"] == "core"
    assert {h["host"] for h in bucket["host_counts"]} == {"alpha", "beta"}
    assert bucket["versions"]["kernel"] == [{"value": "6.1.0-18-amd64", "count": 2}]
    assert bucket["crash_function"] == "crash_here_1001"
    listed = buckets(client, url, q=tag)
    assert listed["total"] == 2 and {b["id"] for b in listed["buckets"]} == {r1.json()["bucket_id"], r3.json()["bucket_id"]}
    assert buckets(client, url, q=tag, host="beta")["total"] == 1
    assert buckets(client, url, q=tag, kind="python")["total"] == 0
    assert buckets(client, url, q=tag, limit=1)["buckets"][0]["id"] == r3.json()["bucket_id"]  # newest first
    assert buckets(client, url, q=tag, limit=1, offset=1)["buckets"][0]["id"] == r1.json()["bucket_id"]
    assert buckets(client, url, q=tag, sort="count", order="desc")["buckets"][0]["count"] == 2
    assert client.get(f"{url}/api/v1/buckets", params={"limit": 1001}).status_code == 422
    report = client.get(f"{url}/api/v1/reports/{r1.json()['id']}").json()
    assert report["host"] == "alpha" and report["token"] == "host-a" and report["archive_format"] == "tar.gz"
    names = {e["name"]: e for e in report["elements"]}
    assert names["reason"]["text"] == f"victim {tag} one" and names["core_backtrace"]["size"] > 0
    bundle = client.get(f"{url}/api/v1/reports/{r3.json()['id']}/bundle")
    assert bundle.status_code == 200 and bundle.content == a3
    for page in ("/", f"/buckets/{r1.json()['bucket_id']}", f"/reports/{r1.json()['id']}", f"/?q={tag}&sort=count"):
        html = client.get(url + page)
        assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    assert client.get(f"{url}/api/v1/buckets/999999").status_code == 404


def test_same_report_twice_is_one_report(env: dict[str, Any], client: httpx.Client) -> None:
    url = env["server"].url
    archive = make_archive(ccpp_elements(2001, unique=str(time.monotonic_ns())))
    first = upload(client, url, archive, token=TOKEN)
    again = upload(client, url, archive, name="renamed.tar.gz", token=TOKEN)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["duplicate"] and again.json()["id"] == first.json()["id"]
    rid = f"client-{time.monotonic_ns()}"
    a = upload(client, url, make_archive(ccpp_elements(2002, unique="a")), token=TOKEN, report_id=rid)
    b = upload(client, url, make_archive(ccpp_elements(2002, unique="b")), token=TOKEN, report_id=rid)
    assert a.status_code == 201 and b.status_code == 200 and b.json()["id"] == a.json()["id"]
    assert client.get(f"{url}/api/v1/buckets/{first.json()['bucket_id']}").json()["count"] == 1
    assert client.get(f"{url}/api/v1/buckets/{a.json()['bucket_id']}").json()["count"] == 1


def test_concurrent_repeats_are_one_report(env: dict[str, Any]) -> None:
    url = env["server"].url
    archive = make_archive(ccpp_elements(3001, unique=str(time.monotonic_ns())))
    results: list[httpx.Response] = []
    barrier = threading.Barrier(12)

    def send() -> None:
        with httpx.Client(timeout=60) as c:
            barrier.wait()
            results.append(upload(c, url, archive, token=TOKEN))

    threads = [threading.Thread(target=send) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [200] * 11 + [201]
    assert len({r.json()["id"] for r in results}) == 1
    with httpx.Client() as c:
        assert c.get(f"{url}/api/v1/buckets/{results[0].json()['bucket_id']}").json()["count"] == 1


def test_faf_ureport_intake(env: dict[str, Any], client: httpx.Client, fixtures_dir: Path) -> None:
    """What an unmodified reporter-ureport sends: multipart field 'file' named *buffer*."""
    url = env["server"].url + "/faf"
    raw = (fixtures_dir / "satyr-ureport" / "ureport-1").read_bytes()
    doc = json.loads(raw)
    files = {"file": ("*buffer*", raw, "application/json")}
    first = client.post(f"{url}/reports/new/", files=files, headers={**auth(), "Accept": "application/json"})
    assert first.status_code == 202, first.text
    reply = first.json()
    assert set(reply) == {"result", "bthash", "message", "reported_to", "solutions"}
    assert reply["bthash"] == bthash(doc["problem"])
    # the same crash from another machine: known now, with a link to the bucket
    doc2 = {**doc, "auth": {"hostname": "other-host"}}
    second = client.post(f"{url}/reports/new/", files={"file": ("*buffer*", json.dumps(doc2).encode())}, headers=auth())
    assert second.status_code == 202 and second.json()["result"] is True
    link = second.json()["reported_to"][0]
    assert link["reporter"] == "ABRT Server" and link["type"] == "url" and "/buckets/" in link["value"]
    redirect = client.get(f"{url}/reports/bthash/{reply['bthash']}/", follow_redirects=False)
    assert redirect.status_code == 302 and redirect.headers["location"].startswith("/buckets/")
    attach = json.dumps({"bthash": reply["bthash"], "type": "RHBZ", "data": "1234567"}).encode()
    r = client.post(f"{url}/reports/attach/", files={"file": ("*buffer*", attach)}, headers=auth())
    assert r.status_code == 202 and r.json() == {"result": True}
    bad = client.post(f"{url}/reports/new/", files={"file": ("*buffer*", b"{oops")}, headers=auth())
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]
    assert client.get(f"{url}/reports/bthash/{'0' * 40}/", follow_redirects=False).status_code == 404


def test_tokens(env: dict[str, Any], client: httpx.Client) -> None:
    server, url = env["server"], env["server"].url
    archive = make_archive(ccpp_elements(4001, unique=str(time.monotonic_ns())))
    r = upload(client, url, archive)
    assert r.status_code == 401 and "Bearer" in r.headers["www-authenticate"] and r.json()["error"]
    assert upload(client, url, archive, token="wrong").status_code == 401
    basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
    r = client.put(f"{url}/upload/p.tar.gz", content=archive, headers={"Authorization": f"Basic {basic}"})
    assert r.status_code == 201, r.text
    # SIGHUP: a new token works, the removed one does not
    env["tokens"].write_text("new-token-2 host-b\n")
    server.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while upload(client, url, make_archive(ccpp_elements(4002, unique=str(time.monotonic_ns()))),
                 token="new-token-2").status_code != 201:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert upload(client, url, archive, token=TOKEN).status_code == 401
    env["tokens"].write_text(f"{TOKEN} host-a\n")
    server.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while upload(client, url, archive, token=TOKEN).status_code not in (200, 201):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert server.alive()


def _sparse_archive(root: Path) -> bytes:
    d = root / "sparse-src"
    d.mkdir(exist_ok=True)
    (d / "time").write_text("1700000000")
    (d / "type").write_text("CCpp")
    with open(d / "coredump", "wb") as f:
        f.truncate(10 << 30)
    out = root / "sparse.tar.gz"
    subprocess.run(["tar", "-S", "-czf", str(out), "-C", str(d), "time", "type", "coredump"], check=True)
    (d / "coredump").unlink()
    return out.read_bytes()


def _bad_inputs(root: Path) -> list[tuple[str, str, bytes, str]]:
    good = make_archive(ccpp_elements(5001))
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("time", "1")
    raw = bytearray(make_archive({"time": b"1", "type": b"CCpp", "abcdef": b"x"}, "tar", tar_format=tarfile.USTAR_FORMAT))
    i = raw.index(b"abcdef")
    raw[i + 2] = 0
    hdr = raw[i:i + 512]
    hdr[148:156] = b" " * 8
    hdr[148:156] = b"%06o\0 " % sum(hdr)
    raw[i:i + 512] = hdr
    members = {f"e{i:06d}": b"" for i in range(100_000)}
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb_header = tarfile.TarInfo("coredump")
    bomb_header.size = 2 << 30
    bomb = co.compress(bomb_header.tobuf()) + b"".join(co.compress(b"\0" * (1 << 20)) for _ in range(100)) + co.flush()
    return [
        ("upload", "truncated gzip", good[: len(good) // 2], "truncated gzip"),
        ("upload", "tar in tar", make_archive({"inner.tar": make_archive(ccpp_elements(5002), "tar")}), "another archive"),
        ("upload", "zip renamed .tar.gz", zbuf.getvalue(), "zip archive"),
        ("upload", "NUL in a name", gzip.compress(bytes(raw)), "NUL byte"),
        ("upload", "100,000 members", make_archive(members), "more than 1000 members"),
        ("upload", "10 GB sparse member", _sparse_archive(root), "sparse"),
        ("upload", "1000:1 bomb", bomb, "decompression bomb"),
        ("upload", "symlink", _symlink_archive(), "symbolic link"),
        ("faf", "invalid uReport JSON", b'{"ureport_version": 2, "reason": ', "not valid JSON"),
        ("faf", "JSON nested 10,000 deep", b"[" * 10_000 + b"]" * 10_000, "nested more than"),
        ("faf", "uReport of the wrong shape", b'{"ureport_version": 2, "os": 5}', "os: expected an object"),
    ]


def _symlink_archive() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for n, d in (("time", b"1700000000"), ("type", b"CCpp")):
            info = tarfile.TarInfo(n)
            info.size = len(d)
            tar.addfile(info, io.BytesIO(d))
        link = tarfile.TarInfo("maps")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/shadow"
        tar.addfile(link)
    return raw.getvalue()


def _tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


@pytest.mark.slow
def test_bad_input_refused_service_stays_up(env: dict[str, Any], client: httpx.Client) -> None:
    url = env["server"].url
    before = buckets(client, url)["total"]
    outside_before = (_tree(env["systmp"]), _tree(env["cwd"]))
    for endpoint, what, body, reason in _bad_inputs(env["root"]):
        if endpoint == "upload":
            r = client.put(f"{url}/upload/bad.tar.gz", content=body, headers=auth())
        else:
            r = client.post(f"{url}/faf/reports/new/", files={"file": ("*buffer*", body)}, headers=auth())
        assert 400 <= r.status_code < 500, (what, r.status_code, r.text)
        error = r.json()["error"]
        assert reason in error and "\n" not in error, (what, error)
        assert env["server"].alive(), what
    assert buckets(client, url)["total"] == before
    assert (_tree(env["systmp"]), _tree(env["cwd"])) == outside_before
    spool = env["root"] / "data" / "tmp"
    assert not list(spool.glob("*.part")), "refused bodies are not left in the spool"


def test_security_headers_and_escaping(env: dict[str, Any], client: httpx.Client) -> None:
    url = env["server"].url
    evil = "<script>alert('x')</script>"
    r = upload(client, url, make_archive(ccpp_elements(6001, reason=evil, unique=str(time.monotonic_ns()))), token=TOKEN)
    page = client.get(f"{url}/reports/{r.json()['id']}")
    assert evil not in page.text and "&lt;script&gt;alert(" in page.text
    for path in ("/", "/api/v1/buckets", "/healthz"):
        h = client.get(url + path).headers
        assert h["x-content-type-options"] == "nosniff"
        assert "script-src 'self'" in h["content-security-policy"] and "unsafe-inline" not in h["content-security-policy"]
    assert "<script>" not in client.get(url + "/").text.replace('<script src="/static/app.js" defer></script>', "")


def test_health_metrics_and_schema(env: dict[str, Any], client: httpx.Client) -> None:
    url = env["server"].url
    assert client.get(f"{url}/healthz").json() == {"status": "ok", "database": "ok"}
    text = client.get(f"{url}/metrics").text
    assert "# TYPE crashkit_uploads_total counter" in text and "crashkit_reports_counted " in text
    assert text.endswith("\n")
    schema = client.get(f"{url}/openapi.json").json()
    assert {"/api/v1/buckets", "/faf/reports/new/", "/upload/{name}", "/healthz"} <= set(schema["paths"])


@pytest.fixture(scope="module")
def strict(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A second server on the same database, with read tokens, a low rate limit and a 1 MiB upload limit."""
    root = tmp_path_factory.mktemp("strict")
    (root / "up").write_text("up-token\n")
    (root / "read").write_text("read-token\n")
    server = Serve(root / "data", db=module_db_url, token_file=root / "up", read_token_file=root / "read",
                   extra=["--rate-limit", "2", "--rate-burst", "5", "--max-upload-size", str(1 << 20)])
    try:
        yield {"server": server}
    finally:
        server.stop()


def test_read_credential_rate_limit_and_size_limit(strict: dict[str, Any], client: httpx.Client) -> None:
    url = strict["server"].url
    assert client.get(f"{url}/api/v1/buckets").status_code == 401
    assert client.get(f"{url}/").status_code == 401
    assert client.get(f"{url}/api/v1/buckets", headers={"Authorization": "Bearer up-token"}).status_code == 401
    assert client.get(f"{url}/api/v1/buckets", headers={"Authorization": "Bearer read-token"}).status_code == 200
    assert client.get(f"{url}/healthz").status_code == 200
    big = os.urandom(2 << 20)
    r = client.put(f"{url}/upload/big.tar.gz", content=big, headers={"Authorization": "Bearer up-token"})
    assert r.status_code == 413 and "limit" in r.json()["error"]

    def chunks() -> Iterator[bytes]:
        for _ in range(32):
            yield big[:65536]

    r = client.put(f"{url}/upload/big.tar.gz", content=chunks(), headers={"Authorization": "Bearer up-token"})
    assert r.status_code == 413
    statuses = []
    for i in range(40):
        r = upload(client, url, make_archive(ccpp_elements(7000, unique=f"{i}-{time.monotonic_ns()}")), token="up-token")
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1 and "rate limit" in r.json()["error"]
            break
    assert statuses[-1] == 429 and set(statuses[:-1]) <= {201, 413}
    assert strict["server"].alive()
