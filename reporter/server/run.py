"""Start the service: validate the configuration, migrate once, then run uvicorn."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

from reporter.server.config import DEFAULT_DATA, Limits, Retention, ServerConfig
from reporter.server.errors import ConfigError

log = logging.getLogger("crashkit.serve")


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """A :class:`ServerConfig` from ``crashkit serve`` options."""
    limits, retention = Limits(), Retention()
    lim_changes = {k: v for k, v in (("rate_per_token", args.rate_limit), ("rate_burst", args.rate_burst),
                                             ("max_upload_bytes", args.max_upload_size))
                   if v is not None}
    ret_changes = {k: v for k, v in (("keep_first", args.keep_first), ("keep_last", args.keep_last),
                                     ("max_age_days", args.max_age_days), ("max_total_bytes", args.max_total_size),
                                     ("interval_seconds", args.prune_interval)) if v is not None}
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    if not 0 < args.port < 65536:
        raise ConfigError("--port must be 1..65535")
    return ServerConfig(
        host=args.host, port=args.port, data_dir=os.path.abspath(args.data or DEFAULT_DATA),
        db_url=args.db, blobs_url=args.blobs, token_file=args.token_file, read_token_file=args.read_token_file,
        workers=args.workers, fsync=not args.no_fsync, public_url=args.public_url,
        limits=dataclasses.replace(limits, **lim_changes), retention=dataclasses.replace(retention, **ret_changes))


def prepare(config: ServerConfig) -> None:
    """Create the data directory, check the token files, and migrate the database once."""
    from reporter.server.auth import TokenSet, ensure_token_file
    from reporter.server.blobs import open_blob_store
    from reporter.server.db import make_engines
    from reporter.server.storage import migrate

    # The URLs are checked before anything is created: a bad option leaves nothing behind.
    database_url, blob_url = config.database_url, config.blob_url
    os.makedirs(config.data_dir, mode=0o750, exist_ok=True)
    os.makedirs(config.tmp_dir, mode=0o750, exist_ok=True)
    for path in (config.token_file, config.read_token_file):
        if path:
            TokenSet(path)
    writer, reader = make_engines(database_url)
    try:
        migrate(writer, config.data_dir)
    finally:
        writer.dispose()
        reader.dispose()
    open_blob_store(blob_url, fsync=config.fsync)
    if not config.token_file:
        created = ensure_token_file(config.upload_token_path)
        TokenSet(config.upload_token_path)
        print(f"crashkit serve: uploads need a token from {config.upload_token_path} "
              f"({'generated now' if created else 'generated on the first start'}; no --token-file given); "
              "send it as 'Authorization: Bearer TOKEN' or as the password of http://user:TOKEN@host/",
              file=sys.stderr, flush=True)


def serve(config: ServerConfig) -> int:
    """Run until interrupted; returns the exit code."""
    import uvicorn

    logging.getLogger("crashkit.serve").setLevel(logging.INFO)
    prepare(config)
    common = {"host": config.host, "port": config.port, "proxy_headers": False, "server_header": False,
              "date_header": True, "log_level": "warning", "timeout_graceful_shutdown": 10,
              "h11_max_incomplete_event_size": 64 * 1024}
    if config.workers == 1:
        from reporter.server.app import asgi_app

        uvicorn.run(asgi_app(config), **common)  # type: ignore[arg-type]
        return 0
    from reporter.server.workers import Supervisor

    return Supervisor(config, common).run()
