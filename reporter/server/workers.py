"""``--workers N``: N uvicorn processes, each on its own ``SO_REUSEPORT`` listening socket.

uvicorn's own ``workers=N`` shares one listening socket, and the first worker to wake up
accepts a whole burst of connections: 32 keep-alive clients connecting at once often all
landed in one worker while the other idled (seen in bench/service_load.py, per-worker counts
from ``/metrics``). With one socket per worker in a ``SO_REUSEPORT`` group the kernel spreads
new connections over the workers by their address hash. The kernel only lets sockets of the
same user join the group.

The supervisor binds the port first (bound, not listening, so it never receives a connection)
to fail early with a one-line error when the address is taken, forwards SIGHUP to the workers
(each re-reads its token files), stops them on SIGTERM or SIGINT, and restarts a worker that
dies after it started; one that dies during start-up stops the service.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess
from typing import Any

from reporter.server.config import CONFIG_ENV, ServerConfig
from reporter.server.errors import ConfigError

STARTUP_SECONDS = 10.0     # a worker that exits sooner than this after starting is a failed start
STOP_SECONDS = 15.0        # uvicorn's graceful shutdown (10 s) plus margin, then SIGKILL


def reuseport_socket(host: str, port: int, *, listen: bool) -> socket.socket:
    """A TCP socket bound to (*host*, *port*) in the port's ``SO_REUSEPORT`` group."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    if listen:
        sock.listen(2048)
    return sock


def _worker_main(host: str, port: int, options: dict[str, Any]) -> None:
    """One worker process: its own listening socket, the app built from the environment."""
    import uvicorn

    try:
        sock = reuseport_socket(host, port, listen=True)
    except ConfigError as exc:
        print(f"crashkit serve: {exc}", file=sys.stderr)
        sys.exit(1)
    config = uvicorn.Config("reporter.server.app:app_from_env", factory=True, **options)
    uvicorn.Server(config).run(sockets=[sock])


class Supervisor:
    """Starts, watches and stops the worker processes."""

    def __init__(self, config: ServerConfig, options: dict[str, Any]) -> None:
        self.config = config
        self.options = {k: v for k, v in options.items() if k not in ("host", "port")}
        self.ctx = multiprocessing.get_context("spawn")
        self.procs: list[tuple[BaseProcess, float]] = []
        self.stopping = False

    def _start_one(self) -> tuple[BaseProcess, float]:
        proc = self.ctx.Process(target=_worker_main, name="crashkit-serve-worker",
                                args=(self.config.host, self.config.port, self.options))
        proc.start()
        return proc, time.monotonic()

    def _signal_all(self, sig: int) -> None:
        for proc, _started in self.procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, sig)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGHUP:
            self._signal_all(signal.SIGHUP)
            return
        self.stopping = True

    def run(self) -> int:
        """Run until SIGTERM/SIGINT (0) or a failed worker start (1)."""
        guard = reuseport_socket(self.config.host, self.config.port, listen=False)
        os.environ[CONFIG_ENV] = self.config.to_json()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        code = 0
        try:
            self.procs = [self._start_one() for _ in range(self.config.workers)]
            while not self.stopping:
                time.sleep(0.2)
                code = self._replace_dead()
                if code:
                    break
        finally:
            self._stop_all()
            guard.close()
        return code

    def _replace_dead(self) -> int:
        for i, (proc, started) in enumerate(self.procs):
            if proc.is_alive() or self.stopping:
                continue
            if time.monotonic() - started < STARTUP_SECONDS:
                print(f"crashkit serve: a worker failed to start (exit {proc.exitcode})", file=sys.stderr)
                return 1
            print(f"crashkit serve: worker {proc.pid} exited ({proc.exitcode}); starting another",
                  file=sys.stderr, flush=True)
            self.procs[i] = self._start_one()
        return 0

    def _stop_all(self) -> None:
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for proc, _started in self.procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(5)
