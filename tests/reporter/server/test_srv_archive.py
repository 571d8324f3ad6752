"""The archive validator: what libreport's reporter-upload sends passes, everything else is refused."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest
from srv_helpers import ccpp_elements, make_archive

from reporter.server.archive import ArchiveLimits, validate
from reporter.server.errors import RejectedInput


def _problem_dir_elements(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


@pytest.mark.parametrize("fmt", ["gz", "xz", "zst", "bz2"])
def test_real_problem_dir_in_every_format(fixtures_dir: Path, fmt: str) -> None:
    elements = _problem_dir_elements(fixtures_dir / "satyr-problem-dir")
    problem = validate(io.BytesIO(make_archive(elements, fmt)), ArchiveLimits())
    assert [e.name for e in problem.elements] == list(elements)
    assert problem.text("type") == "CCpp" and problem.text("time") == elements["time"].decode().strip()
    assert problem.get("core_backtrace") is not None and problem.get("core_backtrace").data == elements["core_backtrace"]


def test_gnu_tar_archive_of_a_directory(tmp_path: Path, fixtures_dir: Path) -> None:
    """An archive made by GNU tar from inside the directory (``./`` entry and ``./NAME`` members)."""
    src = tmp_path / "p"
    shutil.copytree(fixtures_dir / "libreport-sample-problem", src, ignore=shutil.ignore_patterns(".libreport"))
    out = tmp_path / "p.tar.gz"
    subprocess.run(["tar", "-czf", str(out), "-C", str(src), "."], check=True)
    problem = validate(out.open("rb"), ArchiveLimits(), name="p.tar.gz")
    assert problem.text("type") and problem.get("time") is not None


def _refused(data: bytes, match: str, status: int = 400, **limits: int) -> None:
    with pytest.raises(RejectedInput, match=match) as info:
        validate(io.BytesIO(data), ArchiveLimits(**limits))
    assert info.value.status == status
    assert "\n" not in str(info.value)


def _member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", linkname: str = "") -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for n, d in (("time", b"1700000000"), ("type", b"CCpp")):
            info = tarfile.TarInfo(n)
            info.size = len(d)
            tar.addfile(info, io.BytesIO(d))
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = linkname
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return raw.getvalue()


def test_refuses_links_devices_and_paths() -> None:
    _refused(_member("maps", tarfile.SYMTYPE, linkname="/etc/shadow"), "symbolic link")
    _refused(_member("maps", tarfile.LNKTYPE, linkname="time"), "hard link")
    _refused(_member("null", tarfile.CHRTYPE), "character device")
    _refused(_member("fifo", tarfile.FIFOTYPE), "FIFO")
    _refused(_member("sub", tarfile.DIRTYPE), "directory")
    _refused(_member("/etc/cron.d/x", data=b"x"), "absolute path")
    _refused(_member("../escape", data=b"x"), r"'\.\.' component")
    _refused(_member("sub/file", data=b"x"), "subdirectory")
    _refused(_member("a" * 65, data=b"x"), "not a valid libreport element name")
    _refused(_member(".lock", data=b"x"), "not a valid libreport element name")


def test_refuses_nul_in_a_name() -> None:
    raw = bytearray(make_archive({"time": b"1", "type": b"CCpp", "abcdef": b"x"}, "tar", tar_format=tarfile.USTAR_FORMAT))
    i = raw.index(b"abcdef")
    raw[i + 2] = 0  # "ab\0def": tarfile alone would read "ab"
    header = raw[i:i + 512]
    header[148:156] = b" " * 8
    header[148:155] = b"%06o\0" % sum(header) + b" "
    raw[i:i + 512] = header
    import gzip

    _refused(gzip.compress(bytes(raw)), "NUL byte")


def test_truncated_and_trailing_data() -> None:
    good = make_archive(ccpp_elements(1))
    _refused(good[: len(good) // 2], "truncated gzip stream")
    _refused(good + b"junk after the stream", "unexpected data after the end")
    assert validate(io.BytesIO(good + good), ArchiveLimits()).text("type") == "CCpp"  # concatenated gzip members


def test_foreign_formats() -> None:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("time", "1")
    _refused(buf.getvalue(), "zip archive")
    _refused(b"\x04\x22\x4d\x18" + b"\0" * 64, "lz4")
    _refused(b"hello world" * 100, "not a gzip, xz, zstd or bzip2")
    import gzip

    _refused(gzip.compress(b"plain text, not a tar" * 100), "not a tar archive")


def test_tar_in_tar_is_not_a_problem_dir() -> None:
    inner = make_archive(ccpp_elements(1), "tar")
    _refused(make_archive({"problem.tar": inner}), "holds another archive")
    _refused(make_archive({"inner.tar.gz": make_archive(ccpp_elements(1))}), "holds another archive")


def test_problem_dir_rules() -> None:
    _refused(make_archive({"type": b"CCpp"}), "no 'time' element")
    _refused(make_archive({"time": b"-5", "type": b"CCpp"}), "'time' is not a decimal")
    _refused(make_archive({"time": b"1700000000", "type": b"\n"}), "'type' is empty")


@pytest.mark.slow
def test_member_count_limit_and_100000_members() -> None:
    members = {f"e{i:06d}": b"" for i in range(100_000)}
    members.update({"time": b"1", "type": b"CCpp"})
    _refused(make_archive(members), "more than 1000 members", status=413)


def test_decompression_bomb_is_refused_while_reading() -> None:
    """1,000:1 — a 2 GiB member of zeros in about 2 MiB — refused after the first 64 MiB."""
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    header = tarfile.TarInfo("coredump")
    header.size = 2 << 30
    out = [co.compress(make_archive({"time": b"1", "type": b"CCpp"}, "tar")[:-1024]), co.compress(header.tobuf())]
    zeros = b"\0" * (1 << 20)
    out += [co.compress(zeros) for _ in range(100)]
    out.append(co.flush())
    _refused(b"".join(out), "decompression bomb refused", status=413)


def test_declared_sizes_over_the_limit() -> None:
    header = tarfile.TarInfo("coredump")
    header.size = 10 << 30
    import gzip

    _refused(gzip.compress(header.tobuf()), "over the", status=413, max_element=1 << 30)
    header.size = 2 << 30
    _refused(gzip.compress(header.tobuf()), "add up to more than", status=413, max_uncompressed=1 << 30)


def test_sparse_10_gb_member(tmp_path: Path) -> None:
    if shutil.which("tar") is None:
        pytest.skip("GNU tar is needed to make a sparse archive")
    d = tmp_path / "p"
    d.mkdir()
    (d / "time").write_text("1700000000")
    (d / "type").write_text("CCpp")
    with open(d / "coredump", "wb") as f:
        f.truncate(10 << 30)
    for fmt in ("gnu", "posix"):
        out = tmp_path / f"sparse-{fmt}.tar.gz"
        subprocess.run(["tar", f"--format={fmt}", "-S", "-czf", str(out), "-C", str(d), "time", "type", "coredump"],
                       check=True)
        assert out.stat().st_size < 64 * 1024
        _refused(out.read_bytes(), "sparse file")


def test_duplicate_member() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for n, d in (("time", b"1"), ("type", b"CCpp"), ("time", b"2")):
            info = tarfile.TarInfo(n)
            info.size = len(d)
            tar.addfile(info, io.BytesIO(d))
    _refused(raw.getvalue(), "appears twice")
