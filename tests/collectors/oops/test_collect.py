"""``crashkit oops collect`` end to end: rotated compressed syslog files, pstore, kdump and a
journal file into a spool; cursors, duplicates, one occurrence through several sources,
failing sources and bad arguments."""

from __future__ import annotations

import gzip
import json
import lzma
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from collectors.cli import main
from collectors.oops import parse
from collectors.oops.collect import collect
from collectors.oops.kerneloops_dir import HostInfo
from collectors.oops.sources import KdumpSource, PstoreSource, SyslogSource
from reporter.dumpdir import DumpDir, iter_problem_dirs

HOST = HostInfo(kernel="6.1.0-test", architecture="x86_64", hostname="testhost", os_info=None,
                os_release=None, cmdline="root=/dev/vda1", proc_modules="", fips_enabled=None)
# Fixture logs (ABRT's examples, plain dmesg text) used as the content of rotated files.
LOGS = ("oops2.test", "10_oopses.test", "oops6.test", "oops5.test")


def _fixture(fixtures_dir: Path, name: str) -> str:
    return (fixtures_dir / "abrt-oops" / name).read_text(errors="replace")


def _syslog(text: str, host: str = "testhost") -> str:
    return "".join(f"Nov 24 03:15:{i % 60:02d} {host} kernel: {line}\n"
                   for i, line in enumerate(text.splitlines()))


def _dirs(spool: Path) -> dict[str, dict[str, str]]:
    out = {}
    for path in iter_problem_dirs(str(spool)):
        with DumpDir.open(path, readonly=True) as dd:
            out[path] = {n: dd.load_text(n) for n in ("duphash", "oops_title", "count", "backtrace",
                                                      "type", "last_occurrence", "time")}
    return out


def _expected(texts: list[str]) -> list[tuple[str, str | None]]:
    """(title, duphash) of every crash report the parser finds in the plain texts."""
    found = []
    for text in texts:
        found += [(r.title, r.duphash) for r in parse.scan_text(text)
                  if not r.kind.lower().startswith("oom")]
    return found


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_collect_rotated_syslog_then_nothing_new_then_a_duplicate(tmp_path: Path,
                                                                  fixtures_dir: Path) -> None:
    logdir, spool = tmp_path / "log", tmp_path / "spool"
    logdir.mkdir()
    texts = [_fixture(fixtures_dir, n) for n in LOGS]
    (logdir / "kern.log.3.xz").write_bytes(lzma.compress(_syslog(texts[0]).encode()))
    (logdir / "kern.log.2.gz").write_bytes(gzip.compress(_syslog(texts[1]).encode()))
    (logdir / "kern.log.1").write_text(_syslog(texts[2]))
    (logdir / "kern.log").write_text(_syslog(texts[3]))
    expected = _expected(texts)
    assert expected, "the parser finds reports in ABRT's example logs"
    summary = collect([SyslogSource(str(logdir))], str(spool), host=HOST)[0]
    assert summary.errors == []
    assert summary.reports == len(expected)
    dirs = _dirs(spool)
    hashes = {h for _t, h in expected}
    assert summary.new == len(dirs) == len(hashes)  # one directory per distinct hash
    assert summary.new + summary.duplicate + summary.already_seen == summary.reports
    assert {h for h in hashes if h} <= {d["duphash"] for d in dirs.values()}
    assert sorted(d["oops_title"] for d in dirs.values()) == sorted({h: t for t, h in expected}.values())
    counts = sum(int(d["count"]) for d in dirs.values())
    assert counts == summary.reports - summary.already_seen

    # Second run over the same logs: nothing new, nothing bumped.
    before = _dirs(spool)
    again = collect([SyslogSource(str(logdir))], str(spool), host=HOST)[0]
    assert (again.reports, again.new, again.duplicate) == (0, 0, 0)
    assert _dirs(spool) == before

    # Rotation + a real re-occurrence of oops5 (another PID and time): count goes up.
    (logdir / "kern.log.1").rename(logdir / "kern.log.2")
    (logdir / "kern.log").rename(logdir / "kern.log.1")
    recurrence = texts[3].replace("PID: ", "PID: 1").replace("Pid: ", "Pid: 1")
    assert recurrence != texts[3]
    (logdir / "kern.log").write_text(_syslog(recurrence))
    third = collect([SyslogSource(str(logdir))], str(spool), host=HOST)[0]
    n5 = len(_expected([texts[3]]))
    assert third.reports == n5 and third.new == 0 and third.duplicate == n5
    after = _dirs(spool)
    assert set(after) == set(before)
    assert sum(int(d["count"]) for d in after.values()) == counts + n5


def test_one_occurrence_in_several_logs_is_counted_once(tmp_path: Path, fixtures_dir: Path) -> None:
    text = _fixture(fixtures_dir, "oops6.test")
    kmsg_style = tmp_path / "kmsg.log"
    kmsg_style.write_text("".join(f"4,{i},{i * 1000},-;{line}\n"
                                  for i, line in enumerate(text.splitlines())))
    syslog_style = tmp_path / "kern.log.1.gz"
    syslog_style.write_bytes(gzip.compress(_syslog(text).encode()))
    from collectors.oops.sources import FileSource
    spool = tmp_path / "spool"
    first, second = collect([FileSource(str(kmsg_style)), FileSource(str(syslog_style))],
                            str(spool), host=HOST)
    assert first.new >= 1 and second.reports == first.reports
    assert second.already_seen == second.reports and second.new == second.duplicate == 0
    assert all(d["count"] == "1" for d in _dirs(spool).values())


def test_pstore_and_kdump_into_the_spool(tmp_path: Path, fixtures_dir: Path) -> None:
    text = _fixture(fixtures_dir, "oops5.test")
    lines = [f"<4>[  {i:4d}.000000] {line}" for i, line in enumerate(text.splitlines())]
    pstore = tmp_path / "pstore"
    pstore.mkdir()
    half = len(lines) // 2  # Part1 = newest half, written first; compressed as pstore does
    for part, (idx, chunk) in enumerate([(0, lines[half:]), (1, lines[:half])], start=1):
        body = (f"Oops#1 Part{part}\n" + "\n".join(chunk) + "\n").encode()
        (pstore / f"dmesg-ramoops-{idx}.enc.z").write_bytes(zlib.compress(body))
    crash = tmp_path / "crash" / "127.0.0.1-2024-05-06-07:08:09"
    crash.mkdir(parents=True)
    (crash / "vmcore-dmesg.txt").write_text(_fixture(fixtures_dir, "oops2.test"))
    spool = tmp_path / "spool"
    ps, kd = collect([PstoreSource(str(pstore)), KdumpSource(str(tmp_path / "crash"))], str(spool),
                     host=HOST)
    assert ps.errors == kd.errors == []
    assert ps.reports == len(_expected([text])) >= 1
    assert kd.reports == len(_expected([_fixture(fixtures_dir, "oops2.test")])) >= 1
    # The pstore report spans both parts, in log order.
    plain = parse.scan_text(text)[0]
    pstore_dirs = [d for d in _dirs(spool).values() if d["duphash"] == plain.duphash]
    assert pstore_dirs and pstore_dirs[0]["oops_title"] == plain.title
    again = collect([PstoreSource(str(pstore)), KdumpSource(str(tmp_path / "crash"))], str(spool),
                    host=HOST)
    assert [s.reports for s in again] == [0, 0]


def test_journal_file_into_the_spool(tmp_path: Path, fixtures_dir: Path) -> None:
    from test_sources_journal import make_journal  # noqa: E402  (sibling test helper)

    from collectors.oops.sources import JournalSource, read_boot_id
    text = _fixture(fixtures_dir, "oops6.test")
    journal = tmp_path / "k.journal"
    make_journal(journal, [(read_boot_id() or "ab" * 16, line) for line in text.splitlines() if line])
    src = JournalSource(extra_args=("--file", str(journal)))
    spool = tmp_path / "spool"
    summary = collect([src], str(spool), host=HOST)[0]
    plain = parse.scan_text(text)
    assert summary.reports == len(plain) and summary.new >= 1
    assert {d["oops_title"] for d in _dirs(spool).values()} == {r.title for r in plain}
    assert collect([src], str(spool), host=HOST)[0].reports == 0


def test_failing_source_is_reported_and_others_still_run(
        tmp_path: Path, fixtures_dir: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    corrupt = tmp_path / "broken.log.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 200)
    good = tmp_path / "good.log"
    good.write_text(_syslog(_fixture(fixtures_dir, "oops6.test")))
    spool = tmp_path / "spool"
    rc, out, err = _cli(capsys, "oops", "collect", "--source", str(corrupt), "--source", str(good),
                        "--spool", str(spool), "--json")
    assert rc == 0, err
    data = json.loads(out)
    bad, ok = data["sources"]
    assert bad["errors"] and all("\n" not in e and "broken.log.gz" in e for e in bad["errors"])
    assert ok["errors"] == [] and ok["new"] >= 1 and data["dirs"] == sorted(ok["dirs"])
    assert "broken.log.gz" in caplog.text and "Traceback" not in err
    rc, out, _ = _cli(capsys, "oops", "collect", "--source", str(good), "--spool", str(spool))
    assert rc == 0 and "0 report(s)" in out


@pytest.mark.parametrize("argv, message", [
    (["--source", "bogus"], "bogus"),
    (["--source", "/nonexistent/kern.log"], "/nonexistent/kern.log"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, argv: list[str], message: str) -> None:
    res = subprocess.run([sys.executable, "-m", "collectors.cli", "oops", "collect", *argv,
                          "--spool", str(tmp_path / "spool")], capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and message in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "spool").exists()  # nothing half-written


def test_default_sources_on_this_host(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _cli(capsys, "oops", "collect", "--spool", str(tmp_path / "spool"), "--json")
    assert rc == 0, err
    data = json.loads(out)
    names = [s["source"] for s in data["sources"]]
    assert len(names) == len(set(names))
    if Path("/dev/kmsg").exists():
        assert "kmsg" in names
    rc, out, _ = _cli(capsys, "oops", "collect", "--spool", str(tmp_path / "spool"), "--json")
    assert json.loads(out)["new"] == 0


def test_kernel_refusals_in_the_journal_are_counted_once(tmp_path: Path) -> None:
    """The kernel's refusals to pipe a core dump are crashes: ``collect`` counts them in the
    spool (a minimal CCpp directory per program), once, and only from trusted kernel lines."""
    from test_sources_journal import make_journal  # noqa: E402  (sibling test helper)

    from collectors.oops.sources import JournalSource, read_boot_id
    boot = read_boot_id() or "ab" * 16
    journal = tmp_path / "k.journal"
    make_journal(journal, [(boot, "coredump: 4242(storm1): over core_pipe_limit, skipping core dump"),
                           (boot, "coredump: 4243(storm1): over core_pipe_limit, skipping core dump"),
                           (boot, "coredump_pipe: 3 callbacks suppressed")])
    spool = tmp_path / "spool"
    forged = collect([JournalSource(extra_args=("--file", str(journal)))], str(spool), host=HOST)[0]
    assert forged.refusals == 0  # a journal file anybody could have written
    spool2 = tmp_path / "spool2"
    src = JournalSource(extra_args=("--file", str(journal)), trusted=True)
    assert collect([src], str(spool2), host=HOST)[0].refusals == 5
    dirs = []
    for path in iter_problem_dirs(str(spool2)):
        with DumpDir.open(path, readonly=True) as dd:
            dirs.append({n: dd.load_text(n) for n in ("reason", "count", "counted_without_core",
                                                      "kernel_refusal")})
    assert sorted((d["reason"], d["count"], d["counted_without_core"]) for d in dirs) == [
        ("storm1 killed (no core: the kernel refused it: over core_pipe_limit, skipping core dump)", "2", "2"),
        ("unknown program killed (no core: the kernel refused it: refusals the kernel did not print)", "3", "3"),
    ]
    assert all(d["kernel_refusal"] for d in dirs)
    assert collect([src], str(spool2), host=HOST)[0].refusals == 0  # the cursor moved on
