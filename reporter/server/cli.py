"""``crashkit serve``: the option parser (standard library only; the service loads on run)."""

from __future__ import annotations

import argparse

DEFAULT_PORT = 8080


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` to the ``crashkit`` parser."""
    p = subparsers.add_parser(
        "serve", help="run the report upload service and its web UI",
        description="Receive problem-directory bundles (reporter-upload) and uReports (reporter-ureport, "
                    "FAF protocol), bucket duplicates, and browse them (docs/server.md). SQLite and a "
                    "local blob directory under --data by default; PostgreSQL and S3 to scale out.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 8080)")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="data directory: SQLite database, blobs, spooled uploads (default /var/lib/crashkit-server)")
    p.add_argument("--db", metavar="URL", help="database: sqlite:///PATH or postgresql://USER@HOST/DB")
    p.add_argument("--blobs", metavar="URL", help="blob store: a directory or s3://BUCKET/PREFIX")
    p.add_argument("--token-file", metavar="FILE", help="upload tokens, one a line (re-read on SIGHUP)")
    p.add_argument("--read-token-file", metavar="FILE", help="tokens that may read the UI and API (default: open)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    p.add_argument("--rate-limit", type=float, default=None, metavar="N",
                   help="requests per second per token (default 50; 0 = unlimited)")
    p.add_argument("--rate-burst", type=int, default=None, metavar="N",
                   help="requests a token may send at once before the rate applies (default 200)")
    p.add_argument("--max-upload-size", type=int, default=None, metavar="BYTES", help="largest request body")
    p.add_argument("--keep-first", type=int, default=None, metavar="N", help="reports kept per bucket, oldest")
    p.add_argument("--keep-last", type=int, default=None, metavar="N", help="reports kept per bucket, newest")
    p.add_argument("--max-age-days", type=float, default=None, metavar="DAYS", help="prune reports older than this")
    p.add_argument("--max-total-size", type=int, default=None, metavar="BYTES", help="prune oldest beyond this")
    p.add_argument("--prune-interval", type=float, default=None, metavar="SECONDS",
                   help="how often each worker prunes (default 3600; 0 = never)")
    p.add_argument("--public-url", metavar="URL", help="base URL for links in FAF replies")
    p.add_argument("--no-fsync", action="store_true", help="do not fsync blobs (faster, not crash-safe)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """``crashkit serve``."""
    try:
        from reporter.server.run import config_from_args, serve
    except ModuleNotFoundError as exc:
        from reporter.server.errors import ConfigError

        raise ConfigError(f"the upload service needs '{exc.name}': pip install 'crashkit[server]'") from None
    return serve(config_from_args(args))
