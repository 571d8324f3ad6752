"""reporter.server: ``crashkit serve``, the report upload service (docs/server.md).

Receives reporter-upload bundles and FAF uReports, buckets duplicates, stores metadata in
SQLite or PostgreSQL and archives in a blob store, and serves a small web UI and JSON API.
Nothing here is imported by the crash hook; the heavy modules are imported only when
``serve`` runs (:mod:`reporter.server.cli` stays standard library).
"""
