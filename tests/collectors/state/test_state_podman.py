"""The Podman plugin against real podman containers, and the Docker plugin against podman's
real Docker-compatible API (``podman system service``) on a unix socket of our own."""

from __future__ import annotations

import resource
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from statehelpers import need, need_root, token, wait_for

from collectors.state.base import Options
from collectors.state.collect import collect_state

BUSYBOX = Path("/bin/busybox")


def _podman(*args: str) -> str:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A local image of a static busybox (imported from a tar: no registry, no network)."""
    need_root()
    need("podman", "podman")
    if not BUSYBOX.exists() or b"/ld-linux" in BUSYBOX.read_bytes()[:4096]:
        pytest.skip("needs a static /bin/busybox (Debian package busybox-static)")
    root = tmp_path_factory.mktemp("ckstate") / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, root / "bin/busybox")
    for applet in ("sh", "sleep"):
        (root / "bin" / applet).symlink_to("busybox")
    tar = root.parent / "rootfs.tar"
    with tarfile.open(tar, "w") as t:
        t.add(root, arcname=".")
    name = f"localhost/crashkit-state:{token()}"
    _podman("import", str(tar), name)
    yield name
    subprocess.run(["podman", "rmi", "-f", name], capture_output=True)


def _run_prefix() -> list[str]:
    # as tests/collectors/corehook/test_hook_containers.py: runc on this hybrid-cgroup VM, no
    # network, rlimits within this VM's hard limits
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return ["podman", *(["--runtime", "runc"] if shutil.which("runc") else []), "run", "-d",
            "--network", "none", f"--ulimit=nofile={nofile}:{nofile}", "--ulimit=nproc=4096:4096"]


@pytest.fixture(scope="module")
def containers(image) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    """One running container with memory and CPU limits, one created and never started."""
    running, stopped = token(), token()
    _podman(*_run_prefix()[1:], "--name", running, "--memory", "64m", "--cpus", "0.5",
            "--label", "ck.hostile=\x1b[2J\u202e", image, "sleep", "600")
    _podman("create", "--network", "none", "--name", stopped, image, "sleep", "1")
    ids = {running: _podman("inspect", "--format", "{{.Id}}", running),
           stopped: _podman("inspect", "--format", "{{.Id}}", stopped)}
    yield {"running": running, "stopped": stopped, **ids}
    subprocess.run(["podman", "rm", "-f", "-t", "0", running, stopped], capture_output=True)


def _by_name(result: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {i["name"]: i for i in result["instances"]}


def test_podman_plugin_sees_real_containers(containers) -> None:  # type: ignore[no-untyped-def]
    result = collect_state(Options(), ["podman"])["podman"].to_json()
    assert result["status"] == "present", result["error"]
    found = _by_name(result)
    run, stop = found[containers["running"]], found[containers["stopped"]]
    assert run["id"] == containers[containers["running"]]
    assert (run["state"], run["native_state"]) == ("running", "running")
    pid = int(_podman("inspect", "--format", "{{.State.Pid}}", containers["running"]))
    assert run["init_pid"] == pid and run["started_at"].endswith("Z")
    assert run["memory"]["limit"] == 64 << 20 and run["cpu"]["limit"] == 0.5
    assert run["memory"]["usage"] and run["memory"]["usage"] > 0
    assert run["resources_from"].startswith("cgroup")
    assert run["extra"]["labels"]["ck.hostile"] == "\x1b[2J\u202e"
    assert run["os"].startswith("localhost/crashkit-state")
    assert (stop["state"], stop["native_state"], stop["init_pid"]) == ("stopped", "created", None)


@pytest.fixture
def docker_api(tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """podman's Docker-compatible API service on a socket in tmp (stopped by its PID)."""
    sock = tmp_path / "docker.sock"
    proc = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert wait_for(sock.exists, timeout=30), "podman system service never made its socket"
        yield f"unix://{sock}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def test_docker_plugin_against_a_docker_compatible_api(containers, docker_api) -> None:  # type: ignore[no-untyped-def]
    result = collect_state(Options(docker_host=docker_api), ["docker"])["docker"].to_json()
    assert result["status"] == "present", result["error"]
    found = _by_name(result)
    run = found[containers["running"]]
    assert run["id"] == containers[containers["running"]] and run["state"] == "running"
    assert run["memory"]["limit"] == 64 << 20 and run["cpu"]["limit"] == 0.5
    assert run["extra"]["source"] == "api"
    assert found[containers["stopped"]]["state"] == "stopped"


def test_docker_socket_that_is_not_an_api_is_an_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import socket
    import threading

    path = tmp_path / "not-docker.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def answer() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{not json")
        conn.close()

    t = threading.Thread(target=answer, daemon=True)
    t.start()
    try:
        result = collect_state(Options(docker_host=f"unix://{path}"), ["docker"])["docker"]
    finally:
        server.close()
    assert result.status == "error" and "malformed JSON" in (result.error or "")
    gone = collect_state(Options(docker_host=f"unix://{tmp_path}/nothing.sock"), ["docker"])["docker"]
    assert gone.status == "error" and "No such file or directory" in (gone.error or "")
