"""reporter.dumpdir against real ABRT/libreport directories and the on-disk protocol."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from reporter import dumpdir
from reporter.dumpdir import DumpDir, iter_problem_dirs, new_dir_name, spool_path
from reporter.errors import LockedError, ProblemDirError

FIXTURE_DIRS = [
    "libreport-sample-problem",
    "libreport-sample-problems/1",
    "libreport-sample-problems/2",
    "libreport-sample-problems/3",
    "satyr-problem-dir",
]


def copy_fixture(src: Path, dst: Path) -> Path:
    """A writable copy of a read-only fixture directory (in tmp_path, never in the repo)."""
    shutil.copytree(src, dst, symlinks=True)
    for root, dirs, files in os.walk(dst):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o750)
        for name in files:
            os.chmod(os.path.join(root, name), 0o640)
    os.chmod(dst, 0o750)
    return dst


# ---------------------------------------------------------------------- real directories


def _check_loads_like_files(dd: DumpDir, path: Path) -> None:
    files = sorted(p.name for p in path.iterdir() if p.is_file() and not p.is_symlink()
                   and p.name != ".lock")
    assert dd.list_elements() == files
    for name in files:
        raw = (path / name).read_bytes()
        assert dd.load_bytes(name) == raw
        assert dd.has_element(name)
    time_text = (path / "time").read_bytes()
    assert dd.time() == int(time_text.decode().strip())
    assert dd.load_text("type") == (path / "type").read_text().strip() == "CCpp"
    assert dd.load_text("component") == (path / "component").read_text().strip()
    assert dd.load_text("no_such_element") == ""
    assert dd.load_text("no_such_element", "dflt") == "dflt"
    assert dd.load_bytes("no_such_element") is None
    assert dd.load_int("no_such_element") is None


@pytest.mark.parametrize("writable", [True, False], ids=["writable", "read-only"])
@pytest.mark.parametrize("rel", FIXTURE_DIRS)
def test_fixture_dirs_load(fixtures_dir: Path, tmp_path: Path, rel: str, writable: bool) -> None:
    """Each real directory loads from a copy, writable (locked while open, the lock gone
    afterwards) or without write bits (read unlocked, nothing planted): the suite holds
    whatever mode a user's copy of the fixtures has, and never writes into them."""
    path = copy_fixture(fixtures_dir / rel, tmp_path / "dir")
    if not writable:
        os.chmod(path, 0o550)
    before = sorted(os.listdir(path))
    try:
        with DumpDir.open(str(path), readonly=True) as dd:
            assert dd.locked == writable
            _check_loads_like_files(dd, path)
        assert sorted(os.listdir(path)) == before
        assert dumpdir.is_problem_dir(str(path))
    finally:
        os.chmod(path, 0o750)


def test_libreport_sample_problem_values(fixtures_dir: Path) -> None:
    path = fixtures_dir / "libreport-sample-problem"
    with DumpDir.open(str(path), readonly=True) as dd:
        assert dd.time() == 1655815326
        assert dd.last_occurrence() == 1655815326
        assert dd.count() == 1
        assert dd.load_int("uid") == 1000
        assert dd.load_int("pid") == 7005
        assert dd.owner() == 1000  # .libreport/owner
        assert dd.load_text("reason") == "reporter-mantisbt killed by SIGSEGV"
        # `release` is the legacy name of os_release.
        assert dd.load_text("release") == dd.load_text("os_release") == "Fedora release 36 (Thirty Six)"
        assert dd.load_text("runlevel") == "N 5"  # "N 5\n": single trailing newline stripped
        maps = dd.load_text("maps")
        assert maps == (path / "maps").read_text()  # multi-line, already \n-terminated
        assert dd.load_bytes("coredump") == b""
        assert dd.element_size("core_backtrace") == (path / "core_backtrace").stat().st_size


def test_satyr_problem_dir_values(fixtures_dir: Path) -> None:
    path = fixtures_dir / "satyr-problem-dir"
    with DumpDir.open(str(path), readonly=True) as dd:
        assert dd.time() == 1462970611
        assert dd.count() == 55
        assert dd.load_int("uid") == 0
        assert dd.owner() == 0
        assert dd.load_text("cmdline") == "sleep 1000"
        assert dd.load_text("executable") == "/usr/bin/sleep"
        environ = dd.load_text("environ")
        assert environ == (path / "environ").read_text()
        assert environ.endswith("\n_=/bin/sleep\n")


def test_time_with_trailing_newline(fixtures_dir: Path) -> None:
    """libreport's own sample_problems have `time` ending in \\n: readers accept one."""
    raw = (fixtures_dir / "libreport-sample-problems/1/time").read_bytes()
    assert raw.endswith(b"\n")
    with DumpDir.open(str(fixtures_dir / "libreport-sample-problems/1"), readonly=True) as dd:
        assert dd.time() == int(raw)
        backtrace = (fixtures_dir / "libreport-sample-problems/1/backtrace").read_text()
        assert backtrace.count("\n") > 1 and backtrace.endswith("\n")
        assert dd.load_text("backtrace") == backtrace  # multi-line, terminated: unchanged


def test_iter_problem_dirs_on_fixture_copies(fixtures_dir: Path, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    names = []
    for rel in FIXTURE_DIRS:
        name = rel.replace("/", "-")
        copy_fixture(fixtures_dir / rel, spool / name)
        names.append(name)
    copy_fixture(fixtures_dir / "satyr-problem-dir", spool / "inprogress.new")
    (spool / "not-a-dump-dir").mkdir()
    (spool / "bad-time").mkdir()
    (spool / "bad-time" / "time").write_text("yesterday")
    (spool / "bad-time" / "type").write_text("CCpp")
    (spool / "no-type").mkdir()
    (spool / "no-type" / "time").write_text("1")
    (spool / "empty-type").mkdir()
    (spool / "empty-type" / "time").write_text("1")
    (spool / "empty-type" / "type").write_text("\n")
    (spool / "a-file").write_text("x")
    os.symlink(spool / "satyr-problem-dir", spool / "link-to-dir")
    linked_time = tmp_path / "real-time"
    linked_time.write_text("1")
    (spool / "time-is-symlink").mkdir()
    os.symlink(linked_time, spool / "time-is-symlink" / "time")
    (spool / "time-is-symlink" / "type").write_text("CCpp")
    assert list(iter_problem_dirs(str(spool))) == [str(spool / n) for n in sorted(names)]
    assert list(iter_problem_dirs(str(tmp_path / "missing"))) == []


# ---------------------------------------------------------------------- writing


def test_create_commit_on_disk_format(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    old_umask = os.umask(0o077)  # modes are set explicitly, whatever the umask
    try:
        dd = DumpDir.create(str(spool), "ccpp-2024-01-02-10:11:12.5-4242", owner_uid=1000, uid=0, gid=0)
    finally:
        os.umask(old_umask)
    new = spool / "ccpp-2024-01-02-10:11:12.5-4242.new"
    assert dd.path == str(new)
    assert os.readlink(new / ".lock") == str(os.getpid())
    assert stat.S_IMODE(new.stat().st_mode) == 0o750
    assert (new / ".libreport" / "owner").read_bytes() == b"1000"
    assert stat.S_IMODE((new / ".libreport").stat().st_mode) == 0o750
    assert stat.S_IMODE((new / ".libreport" / "owner").stat().st_mode) == 0o640
    assert not (new / ".libreport" / "~owner.tmp").exists()
    # A .new directory is not listed, and not yet valid for commit.
    assert list(iter_problem_dirs(str(spool))) == []
    with pytest.raises(ProblemDirError, match="time"):
        dd.commit()

    dd.set_time(1462970611.9)
    dd.save_text("type", "CCpp")
    dd.save_text("reason", "sleep killed by SIGSEGV")
    dd.save_bytes("coredump", b"\x7fELF" + bytes(range(256)))
    with dd.open_element_writer("maps") as f:
        f.write(b"line1\n")
        f.write(b"line2\n")
    dd.save_int("pid", 4242)
    final = dd.commit()
    assert final == str(spool / "ccpp-2024-01-02-10:11:12.5-4242") == dd.path
    assert not new.exists()
    d = Path(final)
    assert os.readlink(d / ".lock") == str(os.getpid())  # still locked after the rename
    assert (d / "time").read_bytes() == b"1462970611"  # numbers: no trailing newline
    assert (d / "last_occurrence").read_bytes() == b"1462970611"
    assert (d / "pid").read_bytes() == b"4242"
    assert (d / "type").read_bytes() == b"CCpp"
    assert (d / "maps").read_bytes() == b"line1\nline2\n"
    assert (d / "coredump").read_bytes() == b"\x7fELF" + bytes(range(256))
    for name in dd.list_elements():
        st = (d / name).lstat()
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640, name
        # uid/gid 0 as asked; a normal user cannot give files away and keeps them.
        assert (st.st_uid, st.st_gid) == ((0, 0) if os.geteuid() == 0 else (os.geteuid(), os.getegid()))
    dd.close()
    assert not os.path.lexists(d / ".lock")
    assert list(iter_problem_dirs(str(spool))) == [final]


@pytest.mark.skipif(os.geteuid() != 0, reason="fchown to another uid needs root")
def test_create_owner_and_mode(tmp_path: Path) -> None:
    dd = DumpDir.create(str(tmp_path), "x-1", owner_uid=4321, uid=1234, gid=5678, mode=0o644)
    st = os.stat(dd.path)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o755)
    dd.save_text("type", "CCpp")
    st = os.stat(os.path.join(dd.path, "type"))
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o644)
    meta = os.stat(os.path.join(dd.path, ".libreport", "owner"))
    assert (meta.st_uid, meta.st_gid) == (1234, 5678)
    assert dd.owner() == 4321
    dd.set_owner(99)
    assert Path(dd.path, ".libreport", "owner").read_bytes() == b"99"
    dd.discard()


def test_commit_unique_name(tmp_path: Path) -> None:
    (tmp_path / "x-1").mkdir()  # an (empty) directory rename() would silently replace
    dd = DumpDir.create(str(tmp_path), "x-1")
    assert dd.path == str(tmp_path / "x-1.2.new")
    dd2 = DumpDir.create(str(tmp_path), "x-1")
    assert dd2.path == str(tmp_path / "x-1.3.new")
    for d in (dd, dd2):
        d.set_time(1)
        d.save_text("type", "CCpp")
    (tmp_path / "x-1.2").mkdir()  # taken between create and commit
    assert dd.commit() == str(tmp_path / "x-1.3")  # the wanted name first, then suffixes
    assert dd2.commit() == str(tmp_path / "x-1.4")
    assert sorted(os.listdir(tmp_path)) == ["x-1", "x-1.2", "x-1.3", "x-1.4"]
    dd.close()
    dd2.close()


def test_invalid_create_names(tmp_path: Path) -> None:
    for bad in ("", "a/b", "..", "x.new", "x" * 65):
        with pytest.raises(ProblemDirError):
            DumpDir.create(str(tmp_path), bad)
    assert os.listdir(tmp_path) == []


def test_discard_removes_new_dir(tmp_path: Path) -> None:
    dd = DumpDir.create(str(tmp_path), "oops-1")
    dd.save_text("backtrace", "x\n")
    os.mkdir(os.path.join(dd.path, "subdir"))
    Path(dd.path, "subdir", "f").write_text("y")
    os.symlink("/etc/passwd", os.path.join(dd.path, "planted"))
    dd.discard()
    assert os.listdir(tmp_path) == []
    assert Path("/etc/passwd").exists()  # symlink removed, never followed
    with pytest.raises(ProblemDirError):
        dd.save_text("x", "y")


def test_element_write_replaces_not_follows(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    dd = DumpDir.create(str(tmp_path), "w")
    os.symlink(victim, os.path.join(dd.path, "reason"))
    with pytest.raises(ProblemDirError, match="symbolic link"):
        dd.load_text("reason")
    dd.save_text("reason", "new")  # unlink + O_EXCL create: the symlink is replaced
    assert victim.read_text() == "precious"
    assert not os.path.islink(os.path.join(dd.path, "reason"))
    assert dd.load_text("reason") == "new"
    dd.discard()


def test_refuses_symlinked_and_hardlinked_elements(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "time").write_text("1")
    (d / "type").write_text("CCpp")
    secret = tmp_path / "secret"
    secret.write_text("root:x:0:0")
    os.symlink(secret, d / "reason")
    os.link(secret, d / "backtrace")
    (d / "subdir").mkdir()
    os.mkfifo(d / "fifo")
    with DumpDir.open(str(d)) as dd:
        assert dd.list_elements() == ["backtrace", "time", "type"]  # regular files only
        assert not dd.has_element("reason")
        with pytest.raises(ProblemDirError, match="symbolic link"):
            dd.load_bytes("reason")
        with pytest.raises(ProblemDirError, match="hard links"):
            dd.load_text("backtrace")
        with pytest.raises(ProblemDirError, match="not a regular file"):
            dd.load_bytes("subdir")
        with pytest.raises(ProblemDirError, match="not a regular file"):
            dd.load_bytes("fifo")  # O_NONBLOCK: does not hang on a planted FIFO
        for bad in ("../secret", ".lock", ".libreport", "", "a\nb"):
            with pytest.raises(ProblemDirError, match="not a valid element name"):
                dd.load_bytes(bad)
            with pytest.raises(ProblemDirError, match="not a valid element name"):
                dd.save_text(bad, "x")


def test_symlinked_time_makes_dir_invalid(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (tmp_path / "t").write_text("1")
    os.symlink(tmp_path / "t", d / "time")
    (d / "type").write_text("CCpp")
    with pytest.raises(ProblemDirError, match="not a problem directory"):
        DumpDir.open(str(d), wait=False)
    assert not os.path.lexists(d / ".lock")  # backed off, lock released


def test_refuses_symlinked_dir(fixtures_dir: Path, tmp_path: Path) -> None:
    real = copy_fixture(fixtures_dir / "satyr-problem-dir", tmp_path / "real")
    link = tmp_path / "link"
    os.symlink(real, link)
    for path in (str(link), str(link) + "/", str(link) + "//"):
        with pytest.raises(ProblemDirError, match="symbolic link"):
            DumpDir.open(path)
        assert not dumpdir.is_problem_dir(path)
    assert not os.path.lexists(real / ".lock")


def test_open_errors(tmp_path: Path) -> None:
    with pytest.raises(ProblemDirError, match="does not exist"):
        DumpDir.open(str(tmp_path / "missing"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ProblemDirError, match="not a directory"):
        DumpDir.open(str(tmp_path / "file"))
    (tmp_path / "plain").mkdir()
    start = time.monotonic()
    with pytest.raises(ProblemDirError, match="not a problem directory"):
        DumpDir.open(str(tmp_path / "plain"))
    # libreport retries 10 x 50 ms before deciding it is an ordinary directory.
    assert time.monotonic() - start >= 0.4
    assert not os.path.lexists(tmp_path / "plain" / ".lock")


def test_readonly_cannot_write(fixtures_dir: Path) -> None:
    with DumpDir.open(str(fixtures_dir / "satyr-problem-dir"), readonly=True) as dd:
        with pytest.raises(ProblemDirError, match="not opened for writing"):
            dd.save_text("comment", "x")
        with pytest.raises(ProblemDirError):
            dd.delete()


def test_counters(tmp_path: Path) -> None:
    dd = DumpDir.create(str(tmp_path), "c")
    dd.set_time(1000)
    dd.save_text("type", "CCpp")
    assert dd.count() is None
    assert dd.increment_count(2000) == 1
    assert dd.increment_count(500) == 2  # older than `time`: clamped
    assert Path(dd.path, "count").read_bytes() == b"2"
    assert Path(dd.path, "last_occurrence").read_bytes() == b"1000"
    dd.increment_count(3000)
    assert dd.last_occurrence() == 3000
    dd.save_int("last_occurrence", 10)  # written by someone else, below time
    assert dd.last_occurrence() == 1000
    dd.save_text("last_occurrence", "garbage")
    assert dd.last_occurrence() == 1000
    dd.save_text("count", "12\n")  # readers accept one trailing newline
    assert dd.count() == 12
    dd.save_text("count", "12\n\n")
    assert dd.count() is None
    dd.discard()


def test_add_reported_to(tmp_path: Path) -> None:
    dd = DumpDir.create(str(tmp_path), "r")
    dd.save_text("reported_to", "uReport: BTHASH=1")  # no trailing newline, as some writers leave it
    dd.add_reported_to("ABRT Server: URL=https://x/1")
    dd.add_reported_to("ABRT Server: URL=https://x/1")
    dd.add_reported_to("uReport: BTHASH=1")
    assert Path(dd.path, "reported_to").read_bytes() == b"uReport: BTHASH=1\nABRT Server: URL=https://x/1\n"
    dd.discard()


def test_delete_protocol(fixtures_dir: Path, tmp_path: Path) -> None:
    d = copy_fixture(fixtures_dir / "libreport-sample-problem", tmp_path / "d")
    os.symlink("/etc", d / "planted-link")
    (d / "nested").mkdir()
    (d / "nested" / "deeper").mkdir()
    (d / "nested" / "deeper" / "f").write_text("x")
    dd = DumpDir.open(str(d))
    assert os.readlink(d / ".lock") == str(os.getpid())
    dd.delete()
    assert not d.exists()
    assert Path("/etc/passwd").exists()
    dd.close()  # closing after delete is harmless


# ---------------------------------------------------------------------- the .lock protocol

HOLDER = textwrap.dedent(
    """
    import sys
    from reporter.dumpdir import DumpDir
    dd = DumpDir.open(sys.argv[1])
    print("locked", flush=True)
    sys.stdin.readline()
    dd.close()
    print("released", flush=True)
    """
)


def start_holder(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
    return proc


def release_holder(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == "released\n"
    assert proc.wait(timeout=10) == 0


@pytest.fixture
def problem_dir(fixtures_dir: Path, tmp_path: Path) -> Path:
    return copy_fixture(fixtures_dir / "satyr-problem-dir", tmp_path / "ccpp-2016-05-11-14:43:31-19861")


@pytest.mark.slow
def test_live_lock_blocks_and_raises(problem_dir: Path) -> None:
    proc = start_holder(problem_dir)
    try:
        assert os.readlink(problem_dir / ".lock") == str(proc.pid)
        with pytest.raises(LockedError, match=str(proc.pid)):
            DumpDir.open(str(problem_dir), wait=False)
        start = time.monotonic()
        with pytest.raises(LockedError):
            DumpDir.open(str(problem_dir), timeout=0.6)
        assert time.monotonic() - start >= 0.5
        assert os.readlink(problem_dir / ".lock") == str(proc.pid)  # never broken while alive

        # A waiting opener gets the lock as soon as the holder lets go.
        got: list[DumpDir] = []
        waiter = threading.Thread(target=lambda: got.append(DumpDir.open(str(problem_dir))))
        waiter.start()
        time.sleep(0.3)
        assert not got
        release_holder(proc)
        waiter.join(timeout=5)
        assert got and got[0].locked
        assert os.readlink(problem_dir / ".lock") == str(os.getpid())
        got[0].close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_holder_sees_our_lock(problem_dir: Path) -> None:
    """The other direction: a second process must wait for our lock (wait=False there)."""
    script = textwrap.dedent(
        """
        import sys
        from reporter.dumpdir import DumpDir
        from reporter.errors import LockedError
        try:
            DumpDir.open(sys.argv[1], wait=False)
        except LockedError as exc:
            print("busy", exc)
        else:
            print("got it")
        """
    )
    with DumpDir.open(str(problem_dir)):
        out = subprocess.run([sys.executable, "-c", script, str(problem_dir)], capture_output=True, text=True,
                             check=True).stdout
        assert out.startswith("busy") and str(os.getpid()) in out
    out = subprocess.run([sys.executable, "-c", script, str(problem_dir)], capture_output=True, text=True,
                         check=True).stdout
    assert out == "got it\n"


def test_stale_lock_of_dead_process_is_broken(problem_dir: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not os.path.exists(f"/proc/{dead.pid}")
    os.symlink(str(dead.pid), problem_dir / ".lock")
    with DumpDir.open(str(problem_dir), wait=False) as dd:
        assert dd.locked
        assert os.readlink(problem_dir / ".lock") == str(os.getpid())
    assert not os.path.lexists(problem_dir / ".lock")


@pytest.mark.parametrize("target", ["garbage", "", "12ab", "/proc/1"])
def test_lock_with_garbage_target_is_stale(problem_dir: Path, target: str) -> None:
    if target:
        os.symlink(target, problem_dir / ".lock")
    else:
        (problem_dir / ".lock").write_text("")  # a regular file squatting the name
    with DumpDir.open(str(problem_dir), wait=False):
        assert os.readlink(problem_dir / ".lock") == str(os.getpid())


def test_lock_symlink_to_a_live_pid_path_is_not_followed(problem_dir: Path, tmp_path: Path) -> None:
    """.lock pointing at an absolute path: only the text is read, never followed."""
    target = tmp_path / "target"
    target.write_text("keep")
    os.symlink(target, problem_dir / ".lock")
    with DumpDir.open(str(problem_dir), wait=False):
        pass
    assert target.read_text() == "keep"


def test_recursive_lock(problem_dir: Path) -> None:
    with DumpDir.open(str(problem_dir)) as outer:
        with DumpDir.open(str(problem_dir), wait=False) as inner:
            assert inner.locked
        # The inner (recursive) lock did not own .lock: closing it kept ours.
        assert os.readlink(problem_dir / ".lock") == str(os.getpid())
        assert outer.locked
    assert not os.path.lexists(problem_dir / ".lock")


def test_forked_child_does_not_release_parent_lock(problem_dir: Path) -> None:
    dd = DumpDir.open(str(problem_dir))
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        dd.close()
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.readlink(problem_dir / ".lock") == str(os.getpid())
    dd.close()


# ---------------------------------------------------------------------- names and spool


def test_new_dir_name() -> None:
    when = 1462977811.123456
    date = time.strftime("%Y-%m-%d-%H:%M:%S", time.localtime(1462977811))
    assert new_dir_name("ccpp", when, 19861) == f"ccpp-{date}.123456-19861"
    assert new_dir_name("ccpp", 1462977811.5, 7) == f"ccpp-{date}.500000-7"
    assert new_dir_name("oops", 1462977811.000042, 7) == f"oops-{date}.42-7"  # %ld: unpadded


def test_spool_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRASHKIT_SPOOL", raising=False)
    assert spool_path() == "/var/spool/crashkit" == dumpdir.DEFAULT_SPOOL
    monkeypatch.setenv("CRASHKIT_SPOOL", "/srv/spool")
    assert spool_path() == "/srv/spool"
    assert spool_path("/opt/s") == "/opt/s"


def test_import_is_light() -> None:
    """The crash hook imports reporter.dumpdir: stdlib only, nothing heavy (-S: no site noise)."""
    repo = str(Path(__file__).resolve().parents[2])
    code = f"import sys; sys.path.insert(0, {repo!r}); import reporter.dumpdir; print(' '.join(sorted(sys.modules)))"
    mods = set(subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                              check=True).stdout.split())
    ours = {m for m in mods if m.split(".")[0] in ("reporter", "coripper", "collectors")}
    assert ours == {"reporter", "reporter.dumpdir", "reporter.dirfs", "reporter.dirlock",
                    "reporter.elementio", "reporter.elements", "reporter.errors", "reporter.spool"}
    for heavy in ("elftools", "zstandard", "dataclasses", "json", "argparse", "typing", "collections", "re"):
        assert heavy not in mods
