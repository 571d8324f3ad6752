"""``crashkit list`` / ``info`` as a user runs them: matches, filters, columns sized to the
terminal, JSON keys, the pager and colour on a real pseudo-terminal, and directories that
cannot be read (a process without CAP_DAC_OVERRIDE, as a non-root operator is)."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from cli_startup import make_spool  # noqa: E402

START = 1_700_000_000  # make_spool: crash i at START + 3600 i, last occurrence + 60 (i % 3) min
ROW_KEYS = {"directory", "name", "time", "last_occurrence", "type", "executable", "reason", "count", "pid",
            "global_pid", "uid", "signal", "container", "container_id", "container_hostname", "core",
            "core_size", "reported", "problems"}


def crashkit(*args: str, env: dict[str, str] | None = None,
             prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("CRASHKIT_SPOOL", "COLUMNS", "NO_COLOR")}
    full.update(env or {})
    return subprocess.run([*prefix, sys.executable, "-m", "collectors.cli", *args], capture_output=True,
                          text=True, env=full, timeout=60, cwd=REPO, check=False)


@pytest.fixture(scope="module")
def spool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spool = tmp_path_factory.mktemp("list") / "spool"
    make_spool(spool, 14)
    return spool


def listed(spool: Path, *args: str) -> list[str]:
    res = crashkit("list", "--spool", str(spool), "--json", *args)
    assert res.returncode == 0, res.stderr
    return [row["name"] for row in json.loads(res.stdout)]


def test_json_keys_and_values(spool: Path) -> None:
    res = crashkit("list", "--spool", str(spool), "--json")
    rows = json.loads(res.stdout)
    assert len(rows) == 14 and all(set(r) == ROW_KEYS for r in rows)
    r = next(r for r in rows if r["name"] == "ccpp-bench-0003")
    assert (r["pid"], r["global_pid"], r["uid"], r["signal"], r["count"]) == (10003, 20003, 1001, 11, 1)
    assert (r["container"], r["container_id"]) == ("podman", f"{3:064x}")
    assert (r["core"], r["core_size"]) == ("coredump.zst", 4100)
    assert r["executable"] == "/usr/bin/prog3" and r["problems"] == {}
    assert rows[0]["reported"] == [{"label": "ABRT Server", "url": "https://faf.example/reports/0"}]


def test_matches_and_filters(spool: Path) -> None:
    assert listed(spool, "prog3") == ["ccpp-bench-0003", "ccpp-bench-0010"]
    assert listed(spool, "prog3", "prog4") == ["ccpp-bench-0003", "ccpp-bench-0004", "ccpp-bench-0010",
                                               "ccpp-bench-0011"]
    assert listed(spool, "prog3", "uid=1000") == ["ccpp-bench-0010"]
    assert listed(spool, "20005") == ["ccpp-bench-0005"]  # the host's pid
    assert listed(spool, "ccpp-bench-0007") == ["ccpp-bench-0007"]
    assert listed(spool, "container=podman", "sig=SIGABRT") == ["ccpp-bench-0000", "ccpp-bench-0006",
                                                                "ccpp-bench-0012"]
    assert listed(spool, "--reported") == ["ccpp-bench-0000", "ccpp-bench-0004", "ccpp-bench-0008",
                                           "ccpp-bench-0012"]
    assert len(listed(spool, "--unreported")) == 10
    assert listed(spool, "-n", "2") == ["ccpp-bench-0012", "ccpp-bench-0013"]
    assert listed(spool, "-n", "2", "-r") == ["ccpp-bench-0013", "ccpp-bench-0012"]
    assert listed(spool, "--since", f"@{START + 3600 * 12}") == ["ccpp-bench-0012", "ccpp-bench-0013"]
    assert listed(spool, "--until", f"@{START + 1800}") == ["ccpp-bench-0000"]
    assert listed(spool, "--since", "-1h") == []  # 2023's crashes: nothing in the last hour
    assert len(listed(spool, "--since", "2023-11-01", "--until", "tomorrow")) == 14


def test_no_match_exits_1(spool: Path) -> None:
    for cmd in ("list", "info"):
        res = crashkit(cmd, "--spool", str(spool), "nosuchprog", "uid=7")
        assert res.returncode == 1 and res.stdout == ""
        assert res.stderr == "crashkit: error: no problem matches nosuchprog uid=7\n"


@pytest.mark.parametrize("args", [["--since", "the day after"], ["pid=abc"], ["colour=red"], ["-n", "-3"]])
def test_bad_input_exits_2(spool: Path, args: list[str]) -> None:
    res = crashkit("list", "--spool", str(spool), *args)
    assert res.returncode == 2 and res.stderr.startswith("crashkit: error: ")
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_info_takes_the_newest_and_says_how_many(spool: Path) -> None:
    res = crashkit("info", "--spool", str(spool), "prog3", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["directory"].endswith("ccpp-bench-0010") and info["matches"] == 2
    assert res.stderr == "crashkit: 2 problems match, showing the newest: ccpp-bench-0010\n"
    assert info["elements"]["executable"] == "/usr/bin/prog3"
    res = crashkit("info", "--spool", str(spool), "ccpp-bench-0003")
    assert res.stderr == "" and "executable: /usr/bin/prog3" in res.stdout.splitlines()
    res = crashkit("info", str(spool / "ccpp-bench-0004"))  # a path, outside any --spool
    assert "directory: " + str(spool / "ccpp-bench-0004") in res.stdout.splitlines()


def test_table_columns_fit_the_terminal(spool: Path) -> None:
    wide = crashkit("list", "--spool", str(spool), "prog3").stdout.splitlines()
    assert wide[0].split() == ["TIME", "PID", "UID", "SIG", "COUNT", "EXE", "CONTAINER", "SIZE", "REPORTED",
                               "REASON", "DIRECTORY"]
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(START + 3 * 3600))
    assert wide[1].split() == [*when.split(), "20003", "1001", "SIGSEGV", "1", "/usr/bin/prog3",
                               "podman:000000000000", "4.0K", "no", "prog3", "killed", "by", "SIGSEGV",
                               "ccpp-bench-0003"]
    for columns in (120, 100, 80, 60):
        lines = crashkit("list", "--spool", str(spool), env={"COLUMNS": str(columns)}).stdout.splitlines()
        header = lines[0].split()
        assert header[:5] == ["TIME", "PID", "UID", "SIG", "COUNT"], columns
        if columns >= 80:
            assert all(len(line) <= columns for line in lines), columns
            assert "EXE" in header and "CONTAINER" in header and "REPORTED" in header
    narrow = crashkit("list", "--spool", str(spool), "prog3", env={"COLUMNS": "80"}).stdout.splitlines()
    assert "DIRECTORY" not in narrow[0] and "REASON" not in narrow[0]
    assert crashkit("list", "--spool", str(spool), "--no-legend", "prog3").stdout.startswith(when)


def test_unreadable_directories_are_listed_with_the_reason(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (gives directories to another user)")
    spool = tmp_path / "spool"
    make_spool(spool, 3)
    for d in spool.iterdir():
        d.chmod(0o755)
    (spool / "ccpp-bench-0002").chmod(0o700)
    os.chown(spool / "ccpp-bench-0002", 12345, 12345)  # someone else's, unreadable to us
    (spool / "ccpp-bench-0001" / "reason").chmod(0o600)
    os.chown(spool / "ccpp-bench-0001" / "reason", 12345, 12345)
    # Without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH root reads as its uid does.
    no_dac = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        no_dac = ()
    res = crashkit("list", "--spool", str(spool), "--json", prefix=no_dac)
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert set(rows) == {"ccpp-bench-0000", "ccpp-bench-0001", "ccpp-bench-0002"}
    assert rows["ccpp-bench-0002"]["problems"] == {".": "can't be opened: Permission denied"}
    assert rows["ccpp-bench-0002"]["time"] is None
    assert rows["ccpp-bench-0001"]["reason"] is None
    assert "Permission denied" in rows["ccpp-bench-0001"]["problems"]["reason"]
    assert rows["ccpp-bench-0001"]["executable"] == "/usr/bin/prog1"
    text = crashkit("list", "--spool", str(spool), prefix=no_dac).stdout.splitlines()
    at = next(i for i, line in enumerate(text) if line.endswith("ccpp-bench-0002"))
    assert text[at + 1] == "    problem: .: can't be opened: Permission denied"


# ------------------------------------------------------------------ on a terminal


def on_terminal(argv: list[str], env: dict[str, str], columns: int = 200) -> str:
    """Run *argv* with stdout and stderr on a new pseudo-terminal; what it wrote there."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env, cwd=REPO)
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the last writer closed the terminal
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=30)
    os.close(master)
    return out.decode("utf-8", "replace").replace("\r\n", "\n")


def term_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CRASHKIT_SPOOL", "COLUMNS", "NO_COLOR", "PAGER", "SYSTEMD_PAGER", "LESS")}
    env["TERM"] = "xterm"
    env.update(extra)
    return env


def test_pager_and_colour_on_a_terminal(spool: Path, tmp_path: Path) -> None:
    paged = tmp_path / "paged"
    cmd = [sys.executable, "-m", "collectors.cli", "list", "--spool", str(spool)]
    out = on_terminal(cmd, term_env(PAGER=f"cat > {paged}"))
    assert out == ""  # everything went to the pager
    text = paged.read_text()
    assert "\x1b[1mTIME" in text and "ccpp-bench-0013" in text  # bold header
    # SYSTEMD_PAGER wins over PAGER; the pager gets systemd's LESS.
    out = on_terminal(cmd, term_env(PAGER="false", SYSTEMD_PAGER=f"echo $LESS > {paged}; cat >/dev/null"))
    assert paged.read_text() == "FRSXMK\n"
    # --no-pager, or PAGER=cat: straight to the terminal, still coloured.
    for argv, env in ((cmd + ["--no-pager"], term_env(PAGER=f"cat > {tmp_path / 'never'}")),
                      (cmd, term_env(PAGER="cat"))):
        out = on_terminal(argv, env)
        assert "\x1b[1mTIME" in out and "ccpp-bench-0013" in out
    assert not (tmp_path / "never").exists()
    out = on_terminal(cmd + ["--no-pager"], term_env(NO_COLOR="1"))
    assert "\x1b[" not in out and out.startswith("TIME")
    # On a pipe: no pager, no colour.
    res = crashkit("list", "--spool", str(spool), env={"PAGER": f"cat > {tmp_path / 'never'}", "TERM": "xterm"})
    assert "\x1b[" not in res.stdout and not (tmp_path / "never").exists()


def test_info_is_paged_on_a_terminal(spool: Path, tmp_path: Path) -> None:
    paged = tmp_path / "paged"
    out = on_terminal([sys.executable, "-m", "collectors.cli", "info", "--spool", str(spool), "prog5"],
                      term_env(PAGER=f"cat > {paged}"))
    assert out == "crashkit: 2 problems match, showing the newest: ccpp-bench-0012\n"
    assert "executable: /usr/bin/prog5" in paged.read_text().splitlines()


def test_terminal_width_without_columns(spool: Path) -> None:
    out = on_terminal([sys.executable, "-m", "collectors.cli", "list", "--spool", str(spool), "--no-pager"],
                      term_env(NO_COLOR="1"), columns=90)
    lines = out.splitlines()
    assert lines and all(len(line) <= 90 for line in lines)
    assert "DIRECTORY" not in lines[0]
