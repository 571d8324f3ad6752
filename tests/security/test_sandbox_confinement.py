"""Finding 1 (issue 15), the confinement itself: what the post-processing child can no longer
do once :func:`collectors.corehook.sandbox.run_confined` has set it up. Each job below is what
a payload would try; each runs in a real confined child."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from collectors.corehook import sandbox

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, privilege drop)")

NOBODY = sandbox.Confinement(65534, 65534, time_limit=20)


def test_a_module_not_imported_before_cannot_be_imported(tmp_path: Path) -> None:
    (tmp_path / "planted_mod.py").write_text("raise SystemExit('planted code ran')\n")

    def job() -> dict[str, object]:
        import sys

        sys.path.insert(0, str(tmp_path))  # even put back on the path, nothing is searched
        import planted_mod  # type: ignore[import-not-found]  # noqa: F401

        return {"imported": True}

    how = sandbox.Confinement(os.getuid(), os.getgid(), time_limit=20)
    result = sandbox.run_confined(job, how)
    assert result.value is None
    assert result.error is not None and result.error.startswith("ModuleNotFoundError")


@needs_root
def test_the_child_cannot_fork() -> None:
    def job() -> dict[str, object]:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        return {"forked": pid}

    result = sandbox.run_confined(job, NOBODY)
    assert result.value is None and result.error is not None
    assert "BlockingIOError" in result.error or "Resource temporarily unavailable" in result.error


@pytest.mark.slow
@needs_root
def test_the_child_cannot_reach_the_hosts_loopback() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    server.settimeout(3)
    seen: list[object] = []

    def accept() -> None:
        try:
            seen.append(server.accept())
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()

    def job() -> dict[str, object]:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return {"connected": True}

    try:
        result = sandbox.run_confined(job, NOBODY)
    finally:
        thread.join()
        server.close()
    assert result.value is None and not seen
    assert result.error is not None and ("OSError" in result.error or "Connection" in result.error)


@needs_root
def test_the_child_runs_as_nobody_without_privileges() -> None:
    def job() -> dict[str, object]:
        status = Path("/proc/self/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines())
        return {"uid": fields["Uid"].split(), "cap": fields["CapEff"].strip(),
                "nnp": fields["NoNewPrivs"].strip()}

    result = sandbox.run_confined(job, NOBODY)
    assert result.value == {"uid": ["65534"] * 4, "cap": "0000000000000000", "nnp": "1"}


@pytest.mark.slow
def test_a_stuck_child_is_killed_with_its_group_at_the_deadline() -> None:
    def job() -> dict[str, object]:
        import signal

        signal.signal(signal.SIGALRM, signal.SIG_IGN)  # a payload ignoring its own alarm
        while True:
            time.sleep(1)

    how = sandbox.Confinement(os.getuid(), os.getgid(), time_limit=1)
    started = time.monotonic()
    result = sandbox.run_confined(job, how)
    assert result.value is None and result.error is not None and "killed" in result.error
    assert time.monotonic() - started < 1 + sandbox.KILL_GRACE + 5
