"""A throw-away PostgreSQL cluster from Debian's ``postgresql`` package, for tests and benches.

initdb runs as the unprivileged ``nobody`` (via ``runuser``) in a fresh 0700 directory; the
server listens on a unix socket in that directory only (``listen_addresses=''``), so
nothing outside this machine's root can reach it. :meth:`PgCluster.stop` runs
``pg_ctl stop`` and removes the directory.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid

RUN_AS = "nobody"


def pg_bindir() -> str | None:
    """The newest installed ``/usr/lib/postgresql/N/bin`` with initdb, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else None


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started here (None when it can)."""
    if pg_bindir() is None:
        return "PostgreSQL is not installed (Debian package 'postgresql'; .ci/deps installs it)"
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        return "starting a throw-away PostgreSQL cluster needs root and runuser (to initdb as nobody)"
    return None


class PgCluster:
    """A running cluster; use :meth:`url` for SQLAlchemy/psycopg URLs of its databases."""

    def __init__(self) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed")
        self.bindir = bindir
        self.root = tempfile.mkdtemp(prefix="crashkit-pg-")
        pw = pwd.getpwnam(RUN_AS)
        os.chown(self.root, pw.pw_uid, pw.pw_gid)
        os.chmod(self.root, 0o700)
        self.datadir = os.path.join(self.root, "data")
        self._as_user([os.path.join(bindir, "initdb"), "-D", self.datadir, "-U", "postgres",
                       "--auth=trust", "-E", "UTF8", "--no-instructions", "-N"])
        conf = os.path.join(self.datadir, "postgresql.conf")
        with open(conf, "a") as f:  # a test cluster: speed over durability
            f.write(f"listen_addresses = ''\nunix_socket_directories = '{self.root}'\n"
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                    "max_connections = 200\nshared_buffers = 128MB\n")
        self._as_user([os.path.join(bindir, "pg_ctl"), "-D", self.datadir, "-l",
                       os.path.join(self.root, "log"), "-w", "-t", "60", "start"])

    def _as_user(self, argv: list[str]) -> None:
        subprocess.run(["runuser", "-u", RUN_AS, "--", *argv], check=True, capture_output=True,
                       cwd=self.root, timeout=120)

    def url(self, database: str = "postgres") -> str:
        """``postgresql://`` URL of *database* over the cluster's unix socket."""
        return f"postgresql://postgres@/{database}?host={self.root}"

    def create_database(self, name: str | None = None) -> str:
        """Create a fresh database; returns its URL."""
        name = name or "t_" + uuid.uuid4().hex[:12]
        subprocess.run([os.path.join(self.bindir, "psql"), "-h", self.root, "-U", "postgres",
                        "-d", "postgres", "-q", "-c", f'CREATE DATABASE "{name}"'],
                       check=True, capture_output=True, timeout=60)
        return self.url(name)

    def stop(self) -> None:
        """pg_ctl stop (fast) and remove the cluster directory."""
        try:
            self._as_user([os.path.join(self.bindir, "pg_ctl"), "-D", self.datadir, "-m", "fast",
                           "-w", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
