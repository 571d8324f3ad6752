"""The ASGI application: wiring of storage, blobs, auth, limits and the routes.

:func:`create_app` builds one app for one worker; :func:`app_from_env` is the uvicorn
factory used with ``--workers N`` (the configuration travels in the environment).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import anyio
import anyio.to_thread

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import Engine

from reporter.server import retention
from reporter.server.auth import RateLimiter, TokenSet, ensure_token_file, presented_token
from reporter.server.blobs import BlobStore, open_blob_store
from reporter.server.config import ServerConfig
from reporter.server.db import make_engines
from reporter.server.errors import RateLimited, RejectedInput, Unauthorized
from reporter.server.ingest import Ingestor
from reporter.server.metrics import Metrics
from reporter.server.security import BodyLimit, SecurityHeaders
from reporter.server.storage import migrate

log = logging.getLogger("crashkit.serve")
# Ingests running at once in one worker: validation and bucketing hold the GIL, so more threads
# only interleave (and stretch every request's latency); the rest wait in FIFO order.
INGEST_THREADS = 4
# The event loop thread gives up the GIL at every syscall (spooling a body, sending a reply) and
# then waits for an ingest thread to hand it back: at most this long instead of Python's 5 ms.
GIL_SWITCH_SECONDS = 0.001
CHALLENGE = 'Bearer realm="crashkit", Basic realm="crashkit"'
FORM_OVERHEAD = 64 * 1024
T = TypeVar("T")


@dataclass
class State:
    """Everything a request handler needs, on ``app.state.crashkit``."""

    config: ServerConfig
    writer: Engine
    reader: Engine
    blobs: BlobStore
    ingestor: Ingestor
    upload_tokens: TokenSet
    read_tokens: TokenSet | None
    limiter: RateLimiter
    metrics: Metrics
    ingest_slots: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(INGEST_THREADS))

    async def run_ingest(self, func: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Run a blocking ingest step in a worker thread, at most :data:`INGEST_THREADS` at once."""
        return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs), limiter=self.ingest_slots)

    def upload_credential(self, request: Request) -> str:
        """The label of the request's upload token; 401 when it has none (uploads always need one)."""
        label = self.upload_tokens.match(presented_token(request.headers.get("authorization")))
        if label is None:
            raise Unauthorized("a valid upload token is required (Authorization: Bearer TOKEN, "
                               "or HTTP basic auth with the token as password)")
        wait = self.limiter.take(label)
        if wait is not None:
            raise RateLimited(wait)
        return label

    def check_read(self, request: Request) -> None:
        """401 unless reading is open or the request carries a read token."""
        if self.read_tokens is None:
            return
        label = self.read_tokens.match(presented_token(request.headers.get("authorization")))
        if label is None:
            raise Unauthorized("a read token is required (Authorization: Bearer TOKEN or HTTP basic auth)")
        wait = self.limiter.take("read:" + label)
        if wait is not None:
            raise RateLimited(wait)


def state_of(request: Request) -> State:
    """The :class:`State` of the app serving *request*."""
    st: State = request.app.state.crashkit
    return st


def _is_json_path(path: str) -> bool:
    return path.startswith(("/api/", "/upload", "/faf/", "/healthz", "/metrics", "/openapi"))


def build_state(config: ServerConfig) -> State:
    """Open the database (migrating it), the blob store and the token files."""
    writer, reader = make_engines(config.database_url)
    migrate(writer, config.data_dir)
    blobs = open_blob_store(config.blob_url, fsync=config.fsync)
    os.makedirs(config.tmp_dir, mode=0o750, exist_ok=True)
    if not config.token_file:
        ensure_token_file(config.upload_token_path)  # prepare() made it, unless the app is built directly
    return State(
        config=config, writer=writer, reader=reader, blobs=blobs,
        ingestor=Ingestor(config, writer, blobs, reader),
        upload_tokens=TokenSet(config.upload_token_path),
        read_tokens=TokenSet(config.read_token_file) if config.read_token_file else None,
        limiter=RateLimiter(config.limits.rate_per_token, config.limits.rate_burst),
        metrics=Metrics())


def _install_sighup(state: State) -> None:
    """SIGHUP re-reads the token files (the main thread of a worker only)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def on_hup(_signum: int, _frame: object) -> None:
        for tokens in (state.upload_tokens, state.read_tokens):
            if tokens is not None:
                tokens.request_reload()

    try:
        signal.signal(signal.SIGHUP, on_hup)
    except ValueError:  # not the main thread of the interpreter
        pass


def create_app(config: ServerConfig, state: State | None = None) -> FastAPI:
    """The app of one worker."""
    from reporter.server import routes_api, routes_upload, web

    st = state or build_state(config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        sys.setswitchinterval(GIL_SWITCH_SECONDS)
        _install_sighup(st)
        pruner = retention.start_background(st.writer, st.blobs, config)
        yield
        if pruner is not None:
            pruner.stop()
        st.writer.dispose()
        st.reader.dispose()

    app = FastAPI(title="crashkit report service", version="1", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json",
                  description="Receives libreport bundles and FAF uReports, buckets duplicates (docs/server.md).")
    app.state.crashkit = st
    app.include_router(routes_upload.router)
    app.include_router(routes_api.router)
    app.include_router(web.router)
    web.mount_static(app)

    @app.exception_handler(RejectedInput)
    async def rejected(request: Request, exc: RejectedInput) -> Response:
        st.metrics.rejected(exc.status)
        headers: dict[str, str] = {}
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = CHALLENGE
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        if exc.status == 413:
            headers["Connection"] = "close"
        if _is_json_path(request.url.path):
            return JSONResponse({"error": exc.reason}, status_code=exc.status, headers=headers)
        return HTMLResponse(web.render_error(exc.status, exc.reason), status_code=exc.status, headers=headers)

    lim = config.limits
    wrapped = BodyLimit(app, [("/upload", lim.max_upload_bytes + FORM_OVERHEAD),
                              ("/faf/reports/new", lim.max_ureport_bytes + FORM_OVERHEAD),
                              ("/faf/reports/attach", lim.max_attachment_bytes + FORM_OVERHEAD)],
                        default=lim.max_json_body_bytes)
    outer = SecurityHeaders(wrapped)
    app.state.asgi = outer
    return app


class _Wrapped:
    """The app behind the body-limit and header middleware (what uvicorn serves)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.asgi = app.state.asgi

    async def __call__(self, scope: dict[str, object], receive: object, send: object) -> None:
        await self.asgi(scope, receive, send)


def asgi_app(config: ServerConfig) -> _Wrapped:
    """The complete ASGI callable for *config*."""
    return _Wrapped(create_app(config))


def app_from_env() -> _Wrapped:
    """uvicorn factory for worker processes (``--workers N``)."""
    return asgi_app(ServerConfig.from_env())
