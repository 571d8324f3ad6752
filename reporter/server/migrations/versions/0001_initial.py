"""Initial schema: buckets, reports, per-bucket hosts/days/versions, FAF attachments.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    _create_buckets()
    _create_reports()
    _create_bucket_tallies()
    _create_attachments()


def _create_buckets() -> None:
    op.create_table(
        "buckets",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("duphash", sa.String(64), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("component", sa.Text),
        sa.Column("executable", sa.Text),
        sa.Column("crash_function", sa.Text),
        sa.Column("count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("host_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.Column("representative_id", sa.BigInteger),
        sa.UniqueConstraint("kind", "duphash", name="uq_buckets_kind_duphash"),
    )
    op.create_index("ix_buckets_last_seen", "buckets", ["last_seen"])
    op.create_index("ix_buckets_first_seen", "buckets", ["first_seen"])
    op.create_index("ix_buckets_count", "buckets", ["count"])


def _create_reports() -> None:
    op.create_table(
        "reports",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("bucket_id", sa.BigInteger, sa.ForeignKey("buckets.id"), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("client_id", sa.String(128), unique=True),
        sa.Column("content_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("bthash", sa.String(64)),
        sa.Column("duphash_sent", sa.String(64)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("host", sa.String(255)),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("crash_time", sa.Float),
        sa.Column("reason", sa.Text),
        sa.Column("executable", sa.Text),
        sa.Column("component", sa.Text),
        sa.Column("package", sa.Text),
        sa.Column("kernel", sa.Text),
        sa.Column("architecture", sa.String(64)),
        sa.Column("os", sa.Text),
        sa.Column("container", sa.Text),
        sa.Column("token", sa.String(64)),
        sa.Column("blob_key", sa.String(255), nullable=False),
        sa.Column("blob_size", sa.BigInteger, nullable=False),
        sa.Column("archive_format", sa.String(16), nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("elements", sa.Text, nullable=False),
    )
    op.create_index("ix_reports_bucket_id", "reports", ["bucket_id", "id"])
    op.create_index("ix_reports_bthash", "reports", ["bthash"])
    op.create_index("ix_reports_received_at", "reports", ["received_at"])


def _create_bucket_tallies() -> None:
    """Per-bucket counts by host, by day and by version dimension."""
    op.create_table(
        "bucket_hosts",
        sa.Column("bucket_id", sa.BigInteger, sa.ForeignKey("buckets.id"), primary_key=True),
        sa.Column("host", sa.String(255), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
    )
    op.create_index("ix_bucket_hosts_host", "bucket_hosts", ["host"])
    op.create_table(
        "bucket_days",
        sa.Column("bucket_id", sa.BigInteger, sa.ForeignKey("buckets.id"), primary_key=True),
        sa.Column("day", sa.Integer, primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "bucket_versions",
        sa.Column("bucket_id", sa.BigInteger, sa.ForeignKey("buckets.id"), primary_key=True),
        sa.Column("dimension", sa.String(16), primary_key=True),
        sa.Column("value", sa.String(255), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
    )


def _create_attachments() -> None:
    op.create_table(
        "attachments",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("bthash", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("token", sa.String(64)),
    )
    op.create_index("ix_attachments_bthash", "attachments", ["bthash"])


def downgrade() -> None:
    for table in ("attachments", "bucket_versions", "bucket_days", "bucket_hosts", "reports", "buckets"):
        op.drop_table(table)
