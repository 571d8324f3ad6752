#!/usr/bin/env python3
"""Crash to bucket on the service: a 1 GiB-heap process crashes with crashkit-hook installed and post-create reporting to a local crashkit serve.

The victim (tests/programs/crasher.c ``sleep -m 1024 -t 8``) gets SIGSEGV; the times of
each stage are taken from the moment the signal is sent:

  reaped        the parent's wait() returns (the hook has read the core)
  committed     the problem directory is renamed from NAME.new
  analysed      post-processing wrote core_backtrace and duphash
  reported      the hook's post-create ran reporter-crashkit, which wrote ``upload:`` into reported_to
  visible       the crash's bucket is listed by GET /api/v1/buckets (polled every 25 ms, so
                the figure is late by up to that; polling faster loads the service)

Target: visible within 2 s. The hook is installed by ``collectors.corehook.install.install``
(what ``crashkit hook install --config crashkit.toml`` does; the kernel's files are a
stand-in directory, the real core_pattern is set under the tests' host-wide lock) and its
``hook.toml`` gets the ``[report]`` section: ``post_create = true`` and the upload URL and
token. Nothing here runs post-create: the hook's post-processing does
(``reporter.events.postcreate.run_post_create(DIR, config=HOOK_TOML)``).
Baseline, same run: the crash with ``|/usr/bin/dd of=/dev/null`` as core_pattern (reap only).
Needs root; restores core_pattern.
Usage: bench/end_to_end.py [-n RUNS] [-m MIB] [--host-state]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "reporter" / "server"))

import httpx  # noqa: E402
from _victim import crash_sleeping_victim  # noqa: E402
from srv_helpers import Serve  # noqa: E402
from testlib import core_pattern  # noqa: E402

from collectors.corehook import install  # noqa: E402

STAGES = ("reaped", "committed", "analysed", "reported", "visible")
WAIT = 60.0
POLL = 0.005       # the spool: a few stats
API_POLL = 0.025   # the service: each GET costs it CPU that the crash's own pipeline needs
TOKEN = "e2e-token"


def build_crasher(out: Path) -> Path:
    exe = out / "crasher"
    subprocess.run(["gcc", "-g", "-O1", "-pthread", "-fPIE", "-pie", "-o", str(exe),
                    str(REPO / "tests" / "programs" / "crasher.c")], check=True)
    return exe


def _bucket_count(client: httpx.Client, url: str) -> int:
    """Reports counted over all buckets (a repeat of a crash raises its bucket's count)."""
    buckets = client.get(f"{url}/api/v1/buckets?limit=1000", timeout=5).json()["buckets"]
    return sum(int(b["count"]) for b in buckets)


def _element(d: Path, name: str) -> str | None:
    try:
        return (d / name).read_text().strip()
    except OSError:
        return None


class Watch:
    """Polls the spool and the service from a thread, noting (perf_counter) when each stage
    is first seen."""

    def __init__(self, spool: Path, url: str, exe: Path) -> None:
        self.spool, self.url, self.exe = spool, url, str(exe)
        self.client = httpx.Client()
        self.before_dirs = set(os.listdir(spool))
        self.before_buckets = _bucket_count(self.client, url)
        self.seen: dict[str, float] = {}
        self.dir: Path | None = None
        self.next_api = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _mark(self, stage: str) -> None:
        self.seen.setdefault(stage, time.perf_counter())

    def _spool_stages(self) -> None:
        if self.dir is None:
            # other programs may crash meanwhile (the hook is the host's): ours by executable
            for name in set(os.listdir(self.spool)) - self.before_dirs:
                if name.startswith("ccpp-") and not name.endswith(".new"):
                    self.before_dirs.add(name)
                    if _element(self.spool / name, "executable") == self.exe:
                        self.dir = self.spool / name
                        self._mark("committed")
                        break
            if self.dir is None:
                return
        if "analysed" not in self.seen and (self.dir / "duphash").exists() \
                and (self.dir / "core_backtrace").exists():
            self._mark("analysed")
        if "reported" not in self.seen:
            try:
                if "upload:" in (self.dir / "reported_to").read_text():
                    self._mark("reported")
            except OSError:
                pass

    def _run(self) -> None:
        while not self.stop.is_set() and not all(s in self.seen for s in STAGES[1:]):
            self._spool_stages()
            now = time.perf_counter()
            if "visible" not in self.seen and now >= self.next_api:
                self.next_api = now + API_POLL
                try:
                    if _bucket_count(self.client, self.url) > self.before_buckets:
                        self._mark("visible")
                except httpx.HTTPError:
                    pass
            time.sleep(POLL)

    def finish(self, t0: float) -> dict[str, float]:
        """Wait for the last stage (at most WAIT s); the stage times relative to *t0*."""
        self.thread.join(WAIT)
        self.stop.set()
        self.client.close()
        return {stage: when - t0 for stage, when in self.seen.items()}


def one_crash(exe: Path, mib: int, spool: Path, url: str, hook_log: Path) -> dict[str, float]:
    """One crash through the installed hook; its stage times. Returns once the hook's
    post-create has finished (its last reporters run after the upload), so that the next
    run starts on a quiet spool."""
    watch = Watch(spool, url, exe)
    t0, reaped = crash_sleeping_victim(exe, mib, 8)
    seen = watch.finish(t0)
    seen["reaped"] = reaped
    deadline = time.monotonic() + WAIT
    while watch.dir is not None and time.monotonic() < deadline:
        if f"post-create on {watch.dir}:" in (_element(hook_log.parent, hook_log.name) or ""):
            break
        time.sleep(0.05)
    return seen


def setup_hook(base: Path, spool: Path, url: str, host_state: bool) -> install.Paths:
    """``crashkit hook install`` into *base*/state with a stand-in for /proc/sys/kernel, then
    the ``[report]`` section appended to the hook.toml it wrote."""
    fake_proc = base / "proc-sys-kernel"
    fake_proc.mkdir()
    (fake_proc / "core_pattern").write_text("core\n")
    (fake_proc / "core_pipe_limit").write_text("0\n")
    base_cfg = base / "crashkit.toml"
    base_cfg.write_text(f'[hook]\nspool = "{spool}"\nkeep = "minimized"\npostprocess = true\n'
                        'crash_loop_limit = 0\nmin_free_space = 0\nmax_spool_size = 0\nmax_core_size = 0\n'
                        f'log_file = "{base / "hook.log"}"\n')
    paths = install.Paths(str(base / "state"), proc_sys=str(fake_proc))
    install.install(paths, base_config=str(base_cfg))
    with open(paths.hook_config, "a") as f:
        f.write(f'\n[report]\npost_create = true\n\n[report.upload]\nurl = "{url}/upload/"\n'
                f'password = "{TOKEN}"\ninclude_host_state = {"true" if host_state else "false"}\n')
    return paths


def print_results(runs: list[dict[str, float]], drains: list[float], opts: argparse.Namespace) -> None:
    drain = statistics.median(drains)
    print(f"crash to bucket, {opts.mib} MiB heap, 8 threads, keep=minimized, post-create by the "
          f"hook{' with host state' if opts.host_state else ''}, median of {opts.runs}")
    print(f"  baseline |dd of=/dev/null, reaped : {drain * 1000:8.1f} ms")
    for stage in STAGES:
        vals = [r[stage] for r in runs if stage in r]
        if vals:
            med = statistics.median(vals)
            print(f"  {stage:<10} {med * 1000:10.1f} ms   ratio {med / drain:5.2f}x   runs "
                  f"{[round(v * 1000) for v in vals]}{'' if len(vals) == len(runs) else '  (some runs missed it)'}")
        else:
            print(f"  {stage:<10}  not reached")
    vis = [r["visible"] for r in runs if "visible" in r]
    met = len(vis) == len(runs) and statistics.median(vis) <= 2.0
    print(f"  visible within 2 s: {'met' if met else 'MISSED'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=3)
    ap.add_argument("-m", "--mib", type=int, default=1024)
    ap.add_argument("--host-state", action="store_true", help="also collect crashkit check/state into the bundle")
    opts = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="ckb-e2e-", dir="/tmp"))
    srv = None
    try:
        base.chmod(0o755)
        exe = build_crasher(base)
        spool = base / "spool"
        tokens = base / "tokens"
        tokens.write_text(f"{TOKEN} bench\n")
        srv = Serve(base / "serve", token_file=tokens, extra=["--rate-limit", "0"])
        paths = setup_hook(base, spool, srv.url, opts.host_state)
        dd = shutil.which("dd") or "/usr/bin/dd"
        drains, runs = [], []
        for _ in range(opts.runs):
            with core_pattern(f"|{dd} of=/dev/null bs=1M", pipe_limit=16):
                drains.append(crash_sleeping_victim(exe, opts.mib, 8)[1])
            with core_pattern(install.pattern_for(paths.launcher), pipe_limit=16):
                runs.append(one_crash(exe, opts.mib, spool, srv.url, base / "hook.log"))
            if "reported" not in runs[-1]:
                print("  not reported; hook log:", (base / "hook.log").read_text()[-1500:])
            for d in spool.iterdir():  # every run a first occurrence in the spool (no dedup)
                shutil.rmtree(d, ignore_errors=True)
        print_results(runs, drains, opts)
    finally:
        if srv is not None:
            srv.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
