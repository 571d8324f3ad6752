"""Finding 1 (issue 15): code planted in a container's or chroot's tree never runs during the
hook's post-processing.

The old unwinder child chrooted into the crash's tree and then imported on demand, so a
``syslog.py`` planted at the package root's path inside the tree ran (as nobody, in the host's
network namespace) when an error made the child log. Here the tree of a chroot crash carries
a module under every name the child could import (the standard library's, ours, our
dependencies') in every directory of its import path, each of which would leave a marker file
and connect to a listener on the host's 127.0.0.1. Its executable's ``.symtab`` claims
``24 << 36`` bytes, which sends the unwinder down its error path. Nothing planted may run.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from testlib import Programs, require_core_pattern, wait_for

# The hook tests' private installation helper (tests/collectors/corehook/hookenv.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collectors" / "corehook"))
from hookenv import HookEnv  # noqa: E402

from collectors.corehook import capture

pytestmark = pytest.mark.root

OUR_NAMES = ("collectors", "coripper", "reporter", "elftools", "zstandard", "blake3", "lz4",
             "sitecustomize", "usercustomize", "encodings")

# Only what a planted module can count on: the built-in ``posix`` and whatever the victim
# already imported (every other import would find another planted module first).
PAYLOAD = """
import posix as _posix
import sys as _sys
for _p in ({markers!r}):
    try:
        _fd = _posix.open(_p, _posix.O_WRONLY | _posix.O_CREAT | _posix.O_APPEND, 0o666)
        _posix.write(_fd, b"planted module ran\\n")
        _posix.close(_fd)
    except OSError:
        pass
_sock = _sys.modules.get("socket")
if _sock is not None and hasattr(_sock, "create_connection"):
    try:
        _sock.create_connection(("127.0.0.1", {port}), timeout=1).close()
    except Exception:
        pass
_posix._exit({status})  # seen from outside even where the tree is read-only
"""
#: The exit status a planted module ends its process with (the hook logs a child's status).
PLANTED_STATUS = 42


def patch_symtab_size(path: Path, size: int = 24 << 36) -> None:
    """Make the ELF file's SHT_SYMTAB section header claim *size* bytes (it still runs:
    section headers play no part in execution)."""
    data = bytearray(path.read_bytes())
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    for i in range(shnum):
        at = shoff + i * shentsize
        if struct.unpack_from("<I", data, at + 4)[0] == 2:  # SHT_SYMTAB
            struct.pack_into("<Q", data, at + 32, size)
            path.write_bytes(bytes(data))
            return
    raise AssertionError("no .symtab to patch")


def plant(root: Path, markers: list[str], port: int) -> int:
    """Plant the payload under every importable name in every import-path directory, as seen
    inside *root*; returns how many files were planted."""
    payload = PAYLOAD.format(markers=tuple(markers), port=port, status=PLANTED_STATUS)
    dirs = set(capture.import_path()) | {p for p in sys.path if p.startswith("/")}
    names = set(sys.stdlib_module_names) | set(OUR_NAMES)
    planted = 0
    for directory in sorted(dirs):
        inside = root / directory.lstrip("/")
        inside.mkdir(parents=True, exist_ok=True)
        for name in names:
            (inside / f"{name}.py").write_text(payload)
            package = inside / name
            package.mkdir(exist_ok=True)
            (package / "__init__.py").write_text(payload)
            planted += 2
    return planted


class Listener:
    """A TCP listener on the host's 127.0.0.1 that counts connections."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.close()


@pytest.fixture
def hook() -> Iterator[HookEnv]:
    require_core_pattern()
    env = HookEnv()
    env.configure(postprocess=True)
    yield env
    env.cleanup()


@pytest.mark.slow
def test_planted_modules_never_run_in_postprocessing(hook: HookEnv, programs: Programs,
                                                     listener: Listener, tmp_path: Path) -> None:
    root = tmp_path / "tree"
    (root / "tmp").mkdir(parents=True)
    (root / "tmp").chmod(0o1777)  # whoever the payload runs as can leave its marker
    drop = tmp_path / "drop"
    drop.mkdir()
    drop.chmod(0o1777)
    (root / str(drop).lstrip("/")).mkdir(parents=True)
    (root / str(drop).lstrip("/")).chmod(0o1777)
    crasher = root / "crasher"
    crasher.write_bytes(programs.crasher("static").read_bytes())
    crasher.chmod(0o755)
    patch_symtab_size(crasher)
    host_marker = drop / "marker"
    markers = [str(host_marker), "/tmp/marker"]
    assert plant(root, markers, listener.port) > 1000
    root.chmod(0o755)
    tmp_path.chmod(0o755)

    hook.crash(["chroot", str(root), "/crasher", "segv"])
    [d] = hook.dirs()
    finished = wait_for(lambda: (d / "core_backtrace").exists() or hook.postprocess_failures(),
                        timeout=90)
    assert finished, hook.log_text()

    ran = [p for p in (host_marker, root / "tmp" / "marker", root / str(host_marker).lstrip("/"))
           if p.exists()]
    assert not ran, f"planted code ran: {ran}\n{hook.log_text()}"
    assert listener.connections == 0, "planted code connected to the host's 127.0.0.1"
    assert f"wait status {PLANTED_STATUS << 8}" not in hook.log_text(), "a planted module ended the child"
    # The error came back over the pipe as one line, logged by the parent.
    failed = [line for line in hook.log_text().splitlines() if "unwinding failed" in line]
    assert all("Traceback" not in line for line in failed)
