"""Sending one report over HTTP(S) and judging the answer (requests; imported on use).

Outcomes: ``delivered`` (2xx), ``retry`` (connection refused or reset, timeout, 5xx, 408,
429 — with ``Retry-After`` honoured) or ``final`` (other 4xx, TLS verification failures,
bad URLs), the server's one-line message kept. The client report id travels in the
``X-Crashkit-Report-Id`` header, the one the upload service de-duplicates by.

TLS certificates are verified unless ``verify`` is false (``--insecure``); a CA bundle and
a client certificate may be given. Proxies come from the environment (``http_proxy``,
``HTTPS_PROXY``, ``no_proxy``), as libcurl takes them for libreport.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import requests

from reporter.outbox import Entry
from reporter.redact import Scrubber

REPORT_ID_HEADER = "X-Crashkit-Report-Id"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 120.0
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 507, 509, 520, 521, 522, 523, 524})
USER_AGENT = "crashkit-reporter/0.1"

Body = bytes | IO[bytes] | Iterable[bytes]


@dataclass(frozen=True)
class Outcome:
    """How one try went."""

    state: str                  # delivered | retry | final
    status: int | None = None
    message: str = ""
    retry_after: float | None = None
    body: bytes = b""
    url: str = ""

    @property
    def delivered(self) -> bool:
        return self.state == "delivered"

    def json(self) -> Any:
        """The response body as JSON (``None`` when it is not JSON)."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (pure)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def server_message(resp: requests.Response) -> str:
    """The server's reason in one line: ``{"error": ...}``/``{"detail": ...}`` or the text."""
    text = resp.content[:4096].decode("utf-8", "replace")
    try:
        doc = json.loads(text)
        if isinstance(doc, dict):
            for key in ("error", "detail", "message"):
                if isinstance(doc.get(key), str) and doc[key]:
                    return " ".join(doc[key].split())[:500]
    except ValueError:
        pass
    line = " ".join(text.split())
    return line[:500] or (resp.reason or "")


def classify(resp: requests.Response) -> Outcome:
    """An HTTP response as an :class:`Outcome` (pure over the response object)."""
    status = resp.status_code
    body = resp.content
    if 200 <= status < 300:
        return Outcome("delivered", status, body=body, url=resp.url)
    message = f"HTTP {status}: {server_message(resp)}"
    if status in RETRY_STATUSES:
        return Outcome("retry", status, message, retry_after_seconds(resp.headers.get("Retry-After")), body)
    return Outcome("final", status, message, body=body)


def session(entry: Entry, secret: dict[str, Any]) -> requests.Session:
    """A session with the entry's TLS settings and credentials."""
    s = requests.Session()
    s.headers["User-Agent"] = USER_AGENT
    tls = entry.tls
    s.verify = False if tls.get("verify") is False else (tls.get("ca_file") or True)
    if s.verify is False:  # asked for (--insecure): no multi-line Python warning per request
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    if tls.get("client_cert"):
        s.cert = (tls["client_cert"], tls["client_key"]) if tls.get("client_key") else tls["client_cert"]
    if secret.get("username") is not None:
        s.auth = (secret["username"], secret.get("password") or "")
    for k, v in (secret.get("headers") or {}).items():
        s.headers[k] = v
    return s


def _chunks(f: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    while True:
        data = f.read(size)
        if not data:
            return
        yield data


def send(entry: Entry, body: Body, secret: dict[str, Any], *, scrub: Scrubber | None = None,
         sess: requests.Session | None = None, timeout: tuple[float, float] | None = None) -> Outcome:
    """Send *body* as *entry* describes (raw body, or the one file of a multipart form)."""
    scrub = scrub or Scrubber([secret.get("password"), secret.get("token"), *(secret.get("headers") or {}).values()])
    own = sess is None
    s = sess if sess is not None else session(entry, secret)
    headers = {**entry.headers, REPORT_ID_HEADER: entry.id}
    # verify given per request: requests lets $REQUESTS_CA_BUNDLE / $CURL_CA_BUNDLE override a
    # session's verify=False (psf/requests#3829), which would defeat --insecure
    kwargs: dict[str, Any] = {"headers": headers, "timeout": timeout or (CONNECT_TIMEOUT, READ_TIMEOUT),
                              "verify": s.verify}
    if entry.form_field:
        data = body if isinstance(body, bytes) else (body.read() if hasattr(body, "read") else b"".join(body))
        kwargs["files"] = {entry.form_field: (entry.form_filename, data, entry.content_type)}
    else:
        headers.setdefault("Content-Type", entry.content_type)
        kwargs["data"] = _chunks(body) if hasattr(body, "read") else body  # type: ignore[arg-type]
    try:
        resp = s.request(entry.method, entry.url, **kwargs)
    except requests.exceptions.SSLError as exc:
        return Outcome("final", None, scrub(f"TLS error: {exc}"))
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema) as exc:
        return Outcome("final", None, scrub(f"bad URL: {exc}"))
    except requests.exceptions.Timeout as exc:
        return Outcome("retry", None, scrub(f"timed out: {_short(exc)}"))
    except requests.exceptions.RequestException as exc:
        return Outcome("retry", None, scrub(f"connection failed: {_short(exc)}"))
    finally:
        if own:
            s.close()
    out = classify(resp)
    return Outcome(out.state, out.status, scrub(out.message), out.retry_after, out.body, out.url)


def _short(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Connection reset", "Name or service not known",
                   "Remote end closed connection", "timed out", "Connection aborted"):
        if marker in text:
            return marker
    return " ".join(text.split())[:300]
