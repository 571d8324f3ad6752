"""Settings of ``crashkit serve``: one frozen dataclass, with safe defaults for everything.

The CLI builds it; uvicorn workers (``--workers N``) get it back from the environment as
JSON, because each worker process builds its own app.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

from reporter.server.errors import ConfigError

CONFIG_ENV = "CRASHKIT_SERVE_CONFIG"
DEFAULT_DATA = "/var/lib/crashkit-server"
GENERATED_TOKEN_FILE = "upload-tokens"      # in the data directory, when no --token-file is given
KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True)
class Limits:
    """Size, count and rate limits of the service (docs/server.md "Limits")."""

    max_upload_bytes: int = 2 * GiB          # one request body (archive as sent)
    max_uncompressed_bytes: int = 8 * GiB    # everything the archive decompresses to
    max_ratio: int = 100                     # decompressed/compressed, checked past ratio_floor
    ratio_floor_bytes: int = 64 * MiB
    max_members: int = 1000                  # tar members (elements) in one archive
    max_element_bytes: int = 8 * GiB
    max_kept_text_bytes: int = 4 * MiB       # element text kept in the database per report
    max_ureport_bytes: int = 512 * KiB       # FAF's uReport size bound is of this order
    max_attachment_bytes: int = 2048         # FAF's
    max_json_depth: int = 64
    max_json_body_bytes: int = 1 * MiB       # any other JSON or form field
    rate_per_token: float = 50.0             # requests/s per token; 0 = unlimited
    rate_burst: int = 200


@dataclass(frozen=True)
class Retention:
    """What the pruner keeps per bucket; counts and charts survive pruning."""

    keep_first: int = 10
    keep_last: int = 100
    max_age_days: float = 0.0                # 0 = no age limit (first N always kept)
    max_total_bytes: int = 0                 # 0 = no total-size limit
    interval_seconds: float = 3600.0         # how often each worker runs it; 0 = never
    orphan_grace_seconds: float = 3600.0     # unreferenced blobs younger than this are in flight


@dataclass(frozen=True)
class ServerConfig:
    """Everything a worker needs to build the app."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: str = DEFAULT_DATA
    db_url: str | None = None                # default: sqlite:///DATA/crashkit.sqlite3
    blobs_url: str | None = None             # default: DATA/blobs
    token_file: str | None = None            # upload tokens; None = DATA/upload-tokens, generated
    read_token_file: str | None = None       # UI/API read tokens; None = reading is open
    workers: int = 1
    fsync: bool = True
    public_url: str | None = None            # base for links in FAF replies; default: request's
    limits: Limits = field(default_factory=Limits)
    retention: Retention = field(default_factory=Retention)

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL of the metadata database."""
        if self.db_url:
            return normalize_db_url(self.db_url)
        return "sqlite:///" + os.path.join(os.path.abspath(self.data_dir), "crashkit.sqlite3")

    @property
    def blob_url(self) -> str:
        """``s3://bucket/prefix`` or a local directory."""
        return self.blobs_url or os.path.join(os.path.abspath(self.data_dir), "blobs")

    @property
    def upload_token_path(self) -> str:
        """The upload token file: ``--token-file``, else the one generated in the data directory."""
        return self.token_file or os.path.join(os.path.abspath(self.data_dir), GENERATED_TOKEN_FILE)

    @property
    def tmp_dir(self) -> str:
        """Where request bodies are spooled while they arrive (inside the data directory)."""
        return os.path.join(os.path.abspath(self.data_dir), "tmp")

    def to_json(self) -> str:
        """Serialized for the worker processes."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServerConfig:
        """Inverse of :meth:`to_json`."""
        raw = json.loads(text)
        raw["limits"] = Limits(**raw.get("limits", {}))
        raw["retention"] = Retention(**raw.get("retention", {}))
        return cls(**raw)

    @classmethod
    def from_env(cls) -> ServerConfig:
        """The configuration the launching process put in ``$CRASHKIT_SERVE_CONFIG``."""
        text = os.environ.get(CONFIG_ENV)
        return cls.from_json(text) if text else cls()


def normalize_db_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3; sqlite URLs pass through."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    if url.startswith(("postgresql+psycopg://", "sqlite://")):
        return url
    raise ConfigError(f"unsupported database URL '{url.split(':', 1)[0]}:...' "
                      "(use sqlite:///PATH or postgresql://...)")
