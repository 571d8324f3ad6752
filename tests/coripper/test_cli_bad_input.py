"""``coripper`` and ``crashkit backtrace`` on bad input, bad options and hostile outputs.

Each case must end with exit 2 and exactly one line ``<prog>: error: ...`` on stderr (no
traceback, no usage block), within a time bound (``/dev/zero`` is endless input), and leave no
partial or temporary output file; a previous output file survives a failed run untouched.
"""

from __future__ import annotations

import io
import os
import pty
import shutil
import stat
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from coripper.errors import CoripperError
from coripper.minimizer.stream import minimize_file, minimize_stream

from testlib import crash_through_kernel, require_core_pattern
from elfwriter import build_core, simple_spec

pytestmark = pytest.mark.root
ENV = {**os.environ, "LC_ALL": "C"}


def run(prog: str, *args: str, timeout: float = 30, **kw) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    argv = ([sys.executable, "-m", "coripper.cli"] if prog == "coripper"
            else [sys.executable, "-m", "collectors.cli"])
    kw.setdefault("stdout", subprocess.PIPE)
    return subprocess.run([*argv, *args], stderr=subprocess.PIPE, timeout=timeout, env=ENV, **kw)


def assert_one_line_error(r: subprocess.CompletedProcess, prog: str, needle: str) -> None:  # type: ignore[type-arg]
    err = r.stderr.decode()
    assert r.returncode == 2, (r.returncode, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: error: "), err
    assert needle in lines[0], err


# --- inputs that are not usable cores ----------------------------------------------------

def _big_endian_core() -> bytes:
    """simple_spec's core with its ELF header rewritten big-endian (EI_DATA = ELFDATA2MSB)."""
    le = build_core(simple_spec(1))
    fields = struct.unpack_from("<16sHHIQQQIHHHHHH", le, 0)
    ident = fields[0][:5] + b"\x02" + fields[0][6:]
    return struct.pack(">16sHHIQQQIHHHHHH", ident, *fields[1:]) + le[64:]


def _machine(core: bytes, e_machine: int) -> bytes:
    return core[:18] + struct.pack("<H", e_machine) + core[20:]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("badin")
    files: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        files[name] = d / name
        files[name].write_bytes(data)

    put("empty", b"")
    put("text", b"hello world\n" * 100)
    put("short-elf", b"\x7fELF\x02\x01\x01")
    put("big-endian", _big_endian_core())
    put("ppc64", _machine(build_core(simple_spec(1)), 21))
    (d / "adir").mkdir()
    files["adir"] = d / "adir"
    src = d / "lib.c"
    src.write_text("int f(void) { return 1; }\nint main(void) { return f(); }\n")
    files["exe"], files["so"] = d / "exe", d / "lib.so"
    subprocess.run(["gcc", "-o", str(files["exe"]), str(src)], check=True)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(files["so"]), str(src)], check=True)
    return files


@pytest.fixture(scope="module")
def core32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 32-bit (i386) core: a 4-instruction static program, assembled with binutils (no
    32-bit libc needed), crashed through the kernel."""
    require_core_pattern()
    d = tmp_path_factory.mktemp("i386")
    (d / "s.s").write_text(".globl _start\n_start:\n  xorl %eax, %eax\n  movl (%eax), %eax\n")
    try:
        subprocess.run(["as", "--32", "-o", str(d / "s.o"), str(d / "s.s")], check=True,
                       capture_output=True)
        subprocess.run(["ld", "-m", "elf_i386", "-o", str(d / "s32"), str(d / "s.o")],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot build an i386 program: {exc}")
    crash = crash_through_kernel([d / "s32"], d / "cores")
    if crash.core is None:
        pytest.skip("no 32-bit core (kernel without IA32 emulation?)")
    head = crash.core.read_bytes()[:5]
    assert head == b"\x7fELF\x01"
    return crash.core


BAD_INPUTS: list[tuple[str, list[str], str]] = [
    # (input key, extra args, expected text in the error line)
    ("empty", [], "input too short for an ELF header"),
    ("adir", [], "Is a directory"),
    ("/dev/null", [], "input too short for an ELF header"),
    ("/dev/zero", [], "not an ELF file (bad magic)"),
    ("/dev/zero", ["--info", "--json"], "not an ELF file (bad magic)"),
    ("text", [], "not an ELF file (bad magic)"),
    ("short-elf", [], "input too short"),
    ("exe", [], "not a core file (e_type 3"),
    ("so", [], "not a core file (e_type 3"),
    ("big-endian", [], "big-endian ELF cores are not supported"),
    ("ppc64", [], "unsupported machine e_machine=21"),
    ("/nonexistent/core", [], "/nonexistent/core: No such file or directory"),
]


def _path(inputs: dict[str, Path], key: str) -> str:
    return key if key.startswith("/") else str(inputs[key])


@pytest.mark.parametrize("key,extra,needle", BAD_INPUTS)
def test_coripper_bad_input_file(inputs: dict[str, Path], tmp_path: Path, key: str,
                                 extra: list[str], needle: str) -> None:
    out = tmp_path / "out.core"
    out.write_bytes(b"previous")
    args = [*extra, _path(inputs, key)] + ([] if "--info" in extra else ["-o", str(out)])
    assert_one_line_error(run("coripper", *args), "coripper", needle)
    assert out.read_bytes() == b"previous"          # untouched by a failed run
    assert [p.name for p in tmp_path.iterdir()] == ["out.core"]     # no temporary left


@pytest.mark.parametrize("key,extra,needle", [c for c in BAD_INPUTS
                                              if c[0] not in ("adir", "/nonexistent/core")])
def test_coripper_bad_input_stream(inputs: dict[str, Path], key: str, extra: list[str],
                                   needle: str) -> None:
    with open(_path(inputs, key), "rb") as f:
        r = run("coripper", *extra, "-", stdin=f)
    assert_one_line_error(r, "coripper", needle)
    assert r.stdout == b""


def test_32bit_core_refused(core32: Path, tmp_path: Path) -> None:
    needle = "32-bit ELF cores are not supported"
    assert_one_line_error(run("coripper", str(core32), "-o", str(tmp_path / "o")), "coripper",
                          needle)
    with open(core32, "rb") as f:
        assert_one_line_error(run("coripper", "-", stdin=f), "coripper", needle)
    assert_one_line_error(run("crashkit", "backtrace", str(core32)), "crashkit", needle)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args,needle", [
    (["--keep", "1"], "argument --keep: bad range '1'"),
    (["--keep", "x-y"], "bad range 'x-y'"),
    (["--keep", "5-1"], "empty range '5-1'"),
    (["--keep=-5-10"], "bad range '-5-10'"),
    (["--keep", "0-0x20000000000000000"], "outside the 64-bit address space"),
    (["--max-stack=-5"], "size must be positive"),
    (["--max-stack", "0"], "size must be positive"),
    (["--max-stack", "garbage"], "bad size 'garbage'"),
    (["--max-stack", ""], "bad size ''"),
    (["--hash", "md5"], "invalid choice: 'md5'"),
    (["--json"], "--json needs --info"),
    (["--no-such-option"], "unrecognized arguments"),
])
def test_coripper_bad_options(inputs: dict[str, Path], args: list[str], needle: str) -> None:
    assert_one_line_error(run("coripper", *args, str(inputs["text"])), "coripper", needle)


def test_no_core_argument() -> None:
    assert_one_line_error(run("coripper"), "coripper", "the following arguments are required")


# --- outputs ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def core(cores) -> Path:  # type: ignore[no-untyped-def]
    return cores.standard("segv").core


@pytest.fixture(scope="module")
def expected(core: Path) -> bytes:
    out = run("coripper", str(core))
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_output_into_missing_directory(core: Path, tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "out"
    assert_one_line_error(run("coripper", str(core), "-o", str(target)), "coripper",
                          f"{tmp_path / 'no' / 'such'}: No such file or directory")
    assert not (tmp_path / "no").exists()


def test_output_onto_a_directory(core: Path, tmp_path: Path) -> None:
    assert_one_line_error(run("coripper", str(core), "-o", str(tmp_path)), "coripper",
                          "Is a directory")
    assert list(tmp_path.iterdir()) == []


def test_output_replaces_existing_file_atomically(core: Path, expected: bytes,
                                                  tmp_path: Path) -> None:
    out = tmp_path / "out.core"
    out.write_bytes(b"x" * 10_000_000)
    link = tmp_path / "link.core"
    link.symlink_to(out.name)
    r = run("coripper", str(core), "-o", str(link))
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and out.read_bytes() == expected    # the link's target replaced
    assert stat.S_IMODE(out.stat().st_mode) == 0o600            # as the kernel's cores
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.core", "out.core"]


def test_output_to_devices_written_in_place(core: Path, tmp_path: Path) -> None:
    """``-o /dev/null`` must write to the device, never replace it with a regular file (it did:
    the atomic rename replaced the node). Tested on nodes of our own, not the system's."""
    null, full = tmp_path / "null", tmp_path / "full"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    assert run("coripper", str(core), "-o", str(null)).returncode == 0
    assert_one_line_error(run("coripper", str(core), "-o", str(full)), "coripper",
                          f"{full}: No space left on device")
    assert_one_line_error(run("coripper", str(core), stdout=open(full, "wb")), "coripper",
                          "standard output: No space left on device")
    for node in (null, full):
        assert stat.S_ISCHR(node.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "null"]


def test_output_to_fifo(core: Path, expected: bytes, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    r = run("coripper", str(core), "-o", str(fifo))
    data, _ = reader.communicate(timeout=30)
    assert r.returncode == 0, r.stderr
    assert data == expected and stat.S_ISFIFO(fifo.lstat().st_mode)


def test_append_redirection_gives_the_same_core(core: Path, expected: bytes,
                                                tmp_path: Path) -> None:
    """``coripper CORE >> OUT``: O_APPEND ignores seeks, so the header patches must not rely on
    them (they did: the output was corrupt)."""
    out = tmp_path / "out"
    out.write_bytes(b"head\n")
    with open(out, "ab") as f:
        assert run("coripper", str(core), stdout=f).returncode == 0
    assert out.read_bytes() == b"head\n" + expected
    buf = io.BytesIO()
    with open(core, "rb") as src, open(tmp_path / "api", "ab") as f:
        minimize_file(src, f)
    with open(core, "rb") as src:
        minimize_file(src, buf)
    assert (tmp_path / "api").read_bytes() == buf.getvalue()


def test_stdout_closed(core: Path) -> None:
    for extra in ([], ["--info"]):
        r = run("coripper", *extra, str(core), stdout=subprocess.DEVNULL,
                preexec_fn=lambda: os.close(1))
        assert_one_line_error(r, "coripper", "standard output is closed")


def test_reader_goes_away(core: Path) -> None:
    """Writing a core into a pipe nobody reads is an error (the core is incomplete); ``--info``
    into ``head`` is not."""
    for extra, code in ((["--keep-heap"], 2), (["--info"], 0)):
        rfd, wfd = os.pipe()
        os.close(rfd)
        try:
            r = run("coripper", *extra, str(core), stdout=wfd)
        finally:
            os.close(wfd)
        if code:
            assert_one_line_error(r, "coripper", "standard output: Broken pipe")
        else:
            assert r.returncode == 0 and r.stderr == b""
    p = subprocess.Popen(f"{sys.executable} -m coripper.cli --info {core} | head -c 10",
                         shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    out, err = p.communicate(timeout=30)
    assert len(out) == 10 and b"Traceback" not in err


@pytest.mark.parametrize("extra", [[], ["--zstd"]])
def test_refuses_a_terminal(core: Path, extra: list[str]) -> None:
    master, slave = pty.openpty()
    try:
        r = run("coripper", *extra, str(core), stdout=slave)
    finally:
        os.close(slave)
        os.close(master)
    assert_one_line_error(r, "coripper", "refusing to write a core to a terminal")


def _without_dac_override() -> list[str]:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to drop CAP_DAC_OVERRIDE")
    return ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]


def test_unreadable_core(core: Path, tmp_path: Path) -> None:
    prefix = _without_dac_override()
    locked = tmp_path / "locked.core"
    shutil.copyfile(core, locked)
    locked.chmod(0)
    for argv, prog in (([sys.executable, "-m", "coripper.cli", str(locked), "-o",
                         str(tmp_path / "o")], "coripper"),
                       ([sys.executable, "-m", "collectors.cli", "backtrace", str(locked)],
                        "crashkit")):
        r = subprocess.run([*prefix, *argv], capture_output=True, timeout=60, env=ENV)
        assert_one_line_error(r, prog, f"{locked}: Permission denied")
    assert not (tmp_path / "o").exists()


# --- truncation up to the first segments ---------------------------------------------------

def _first_loads_end(data: bytes, count: int) -> int:
    phoff, = struct.unpack_from("<Q", data, 32)
    phnum, = struct.unpack_from("<H", data, 56)
    ends = []
    for i in range(phnum):
        p_type, _f, off, _v, _p, filesz = struct.unpack_from("<IIQQQQ", data, phoff + 56 * i)
        if p_type == 1 and filesz:
            ends.append(off + filesz)
    return sorted(ends)[min(count, len(ends)) - 1]


@pytest.mark.slow
def test_truncated_every_4k_up_to_the_first_segments(core: Path, tmp_path: Path) -> None:
    data = core.read_bytes()
    limit = _first_loads_end(data, 3)
    phoff, = struct.unpack_from("<Q", data, 32)
    table_end = phoff + 56 * struct.unpack_from("<H", data, 56)[0]
    cuts = list(range(0, limit + 1, 4096)) + [1, 63, 64, 65, 200, table_end - 1, table_end]
    for cut in cuts:                                # Python API, both modes: fast
        for fn in (minimize_file, minimize_stream):
            try:
                report = fn(io.BytesIO(data[:cut]), io.BytesIO())
            except CoripperError as exc:
                # only an incomplete ELF header or program header table is fatal
                assert cut < table_end and str(exc), (cut, exc)
            else:
                assert report.truncated, cut
    cut_file, out = tmp_path / "cut", tmp_path / "out"
    for cut in range(4096, limit + 1, 4096):        # the command: exit 1, a valid core
        cut_file.write_bytes(data[:cut])
        r = run("coripper", str(cut_file), "-o", str(out))
        err = r.stderr.decode()
        assert r.returncode == 1 and "Traceback" not in err, (cut, err)
        assert err and all(line.startswith("coripper: warning: ") for line in err.splitlines())
        for tool in ("readelf", "eu-readelf"):
            check = subprocess.run([tool, "-a", str(out)], capture_output=True, text=True,
                                   env=ENV)
            text = (check.stdout + check.stderr).lower()
            assert check.returncode == 0 and "warning" not in text and "error" not in text, \
                (tool, cut, text[-500:])


# --- crashkit backtrace -------------------------------------------------------------------

BT_CASES: list[tuple[Callable[[dict[str, Path], Path], list[str]], str]] = [
    (lambda i, t: [str(i["empty"])], "not an ELF file"),
    (lambda i, t: [str(i["adir"])], "no coredump or coredump.zst element"),
    (lambda i, t: ["/dev/null"], "not an ELF file"),
    (lambda i, t: ["/dev/zero"], "not an ELF file"),
    (lambda i, t: [str(i["exe"])], "not a core file"),
    (lambda i, t: [str(i["so"])], "not a core file"),
    (lambda i, t: [str(i["big-endian"])], "big-endian"),
    (lambda i, t: [str(i["big-endian"]), "--rootdir", "/nonexistent"], "is not a directory"),
    (lambda i, t: [str(i["big-endian"]), "--executable", "/nonexistent"],
     "--executable /nonexistent: not a file"),
]


@pytest.mark.parametrize("case", range(len(BT_CASES)))
def test_backtrace_bad_input(inputs: dict[str, Path], tmp_path: Path, case: int) -> None:
    make_args, needle = BT_CASES[case]
    assert_one_line_error(run("crashkit", "backtrace", *make_args(inputs, tmp_path)), "crashkit",
                          needle)


def test_backtrace_of_nothing_is_no_match(tmp_path: Path) -> None:
    # Neither a file nor a problem: a match naming nothing (exit 1, as list/info; docs/cli.md).
    # An empty spool of its own: the default one may not be readable by a normal user.
    res = run("crashkit", "backtrace", "--spool", str(tmp_path), "/nonexistent/core")
    assert res.returncode == 1 and res.stdout == b""
    assert res.stderr.decode().strip() == "crashkit: error: no problem matches /nonexistent/core"


def test_backtrace_bad_problem_dirs(tmp_path: Path) -> None:
    (tmp_path / "coredump.zst").write_bytes(b"not zstd at all")
    assert_one_line_error(run("crashkit", "backtrace", str(tmp_path)), "crashkit",
                          "coredump.zst: not zstd data")
    (tmp_path / "coredump.zst").write_bytes(b"\x28\xb5\x2f\xfd" + b"garbage" * 100)
    assert_one_line_error(run("crashkit", "backtrace", str(tmp_path)), "crashkit",
                          "corrupt zstd data after 0 bytes")
    (tmp_path / "coredump.zst").unlink()
    (tmp_path / "coredump").symlink_to("/dev/zero")
    assert_one_line_error(run("crashkit", "backtrace", str(tmp_path)), "crashkit",
                          "no coredump or coredump.zst element")
