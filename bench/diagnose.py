"""``crashkit diagnose`` side by side with sos in the same run.

Figures, each against a baseline measured here and now:

* ``sos report --batch`` vs ``crashkit diagnose`` (median of 3): the ratio, and the time of
  every section from the manifest, naming the one that bounds the run;
* ``--clean`` throughput on the bundle's own text (replicated to about 20 MB), against
  ``cat`` of the same files and ``sos clean`` of the same files (a directory sos accepts:
  the bundle's files plus an empty ``sos_logs``);
* ``diagnose --clean`` vs ``diagnose`` (median of 3 each, interleaved);
* a stress figure: the cleaner on a dense synthetic journal (a host name on every line, an
  address on every other), which is its worst case.

sosreport is installed with apt-get when missing (bench only; never a product dependency).
Run as root: ``.venv/bin/python bench/diagnose.py``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TARGET_TEXT = 20_000_000


def ensure_sos() -> None:
    if shutil.which("sos"):
        return
    print("installing sosreport for the bench (apt-get)...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "sosreport"], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def timed(argv: list[str], **kw: object) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]
    return time.perf_counter() - start


def diagnose(out: Path, clean: bool) -> float:
    argv = [sys.executable, "-m", "collectors.cli", "diagnose", "--quiet", "-o", str(out)]
    start = time.perf_counter()
    res = subprocess.run(argv + (["--clean"] if clean else []), cwd=str(REPO), capture_output=True)
    took = time.perf_counter() - start
    if res.returncode not in (0, 1):
        raise SystemExit(f"diagnose failed: {res.stderr.decode()[-500:]}")
    return took


def members(path: Path) -> dict[str, bytes]:
    import zstandard

    with open(path, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as z:
        tf = tarfile.open(fileobj=z, mode="r|")
        return {m.name.split("/", 1)[1]: tf.extractfile(m).read() for m in tf if m.isfile()}  # type: ignore[union-attr]


def section_table(manifest: dict[str, object]) -> None:
    sections = sorted(manifest["sections"], key=lambda s: -s["duration"])  # type: ignore[index, union-attr, arg-type]
    print(f"  sections (wall {manifest['duration']} s, parallel):")
    for s in sections:
        print(f"    {s['name']:<16} {s['duration']:6.2f} s  limit {s['time_limit']:5.0f} s  {s['items']:3d} items  "
              f"{s['size'] / 1e6:6.2f} MB  {s['status']}")
    print(f"  bounded by: {sections[0]['name']} ({sections[0]['duration']:.2f} s)")


def text_files(bundle: dict[str, bytes], root: Path) -> list[Path]:
    """The bundle's text members written under *root*, replicated to about TARGET_TEXT bytes."""
    texts = {k: v for k, v in bundle.items() if k.startswith("sections/") and b"\0" not in v[:4096] and v}
    total = sum(len(v) for v in texts.values())
    reps = max(1, TARGET_TEXT // max(total, 1))
    paths = []
    for name, data in texts.items():
        p = root / name.replace(":", "_")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data * reps)
        paths.append(p)
    return paths


def dense_journal(n: int = TARGET_TEXT) -> bytes:
    random.seed(1)
    msgs = ["sshd[123]: Accepted publickey for alice from 192.168.1.{} port 22 ssh2",
            "systemd[1]: Started foo.service - Foo daemon.",
            "dhclient[55]: DHCPACK of 10.0.3.{} from 10.0.3.1 (xid=0x4a3b)",
            "nginx: GET /api/v1/items?id=42&token=abcdef123456 HTTP/1.1 200 fe80::5054:ff:fe12:3456",
            "NetworkManager[77]: <info> device (eth0): state change 52:54:00:12:34:56",
            "kernel: EXT4-fs (vda1): mounted filesystem with ordered data mode. Quota mode: none."]
    out, size = [], 0
    while size < n:
        line = (f"May 20 12:{random.randint(0, 59):02d}:{random.randint(0, 59):02d}.{random.randint(0, 999999):06d} "
                f"webhost01.corp.example.com " + random.choice(msgs).format(random.randint(1, 254))).encode()
        out.append(line)
        size += len(line) + 1
    return b"\n".join(out) + b"\n"


def main() -> int:
    ensure_sos()
    from collectors.diagnose.clean import Cleaner
    from collectors.diagnose.main import make_cleaner

    work = Path(tempfile.mkdtemp(prefix="bench-diagnose-"))
    try:
        sosdir = work / "sos"
        sosdir.mkdir()
        t_sos = timed(["sos", "report", "--batch", "--quiet", "--tmp-dir", str(sosdir)])
        sos_archive = next(sosdir.glob("sosreport-*.tar.xz"))
        dirty, cleaned = [], []
        for i in range(3):
            dirty.append(diagnose(work / f"d{i}.tar.zst", False))
            cleaned.append(diagnose(work / f"c{i}.tar.zst", True))
        t_d, t_c = statistics.median(dirty), statistics.median(cleaned)
        bundle = members(work / "d0.tar.zst")
        manifest = json.loads(bundle["manifest.json"])
        print("speed")
        print(f"  sos report --batch      {t_sos:6.2f} s  ({sos_archive.stat().st_size / 1e6:.1f} MB archive)")
        print(f"  crashkit diagnose       {t_d:6.2f} s  (median of 3: {', '.join(f'{t:.2f}' for t in dirty)}; "
              f"{(work / 'd0.tar.zst').stat().st_size / 1e6:.2f} MB archive, "
              f"{sum(i['size'] for i in manifest['items']) / 1e6:.1f} MB of text)")
        print(f"  ratio diagnose / sos    {t_d / t_sos:6.3f}  (goal <= 0.5; and < 20 s: {'yes' if t_d < 20 else 'NO'})")
        section_table(manifest)

        print("--clean in the run")
        print(f"  diagnose --clean        {t_c:6.2f} s  (median of 3: {', '.join(f'{t:.2f}' for t in cleaned)})")
        print(f"  ratio clean / dirty     {t_c / t_d:6.3f}  (goal <= 1.2)")

        tdir = work / "text"
        files = text_files(bundle, tdir / "bundle")
        (tdir / "bundle" / "sos_logs").mkdir()
        size = sum(p.stat().st_size for p in files)
        t_cat = timed(["cat", *map(str, files)])
        cleaner = make_cleaner()
        datas = [p.read_bytes() for p in files]
        start = time.perf_counter()
        for d in datas:
            cleaner.clean(d)
        t_ours = time.perf_counter() - start
        t_sosclean = timed(["sos", "clean", "--batch", str(tdir / "bundle")], cwd=str(tdir))
        print(f"clean throughput on the bundle's text ({len(files)} files, {size / 1e6:.1f} MB)")
        print(f"  cat                     {size / t_cat / 1e6:8.1f} MB/s")
        print(f"  crashkit cleaner        {size / t_ours / 1e6:8.1f} MB/s  ({t_ours / t_cat:.1f} x cat's time; goal >= 50 MB/s)")
        print(f"  sos clean               {size / t_sosclean / 1e6:8.1f} MB/s  ({t_sosclean:.1f} s)")
        print(f"  ratio crashkit / sos    {t_sosclean / t_ours:8.1f} x  (goal >= 20)")

        dense = dense_journal()
        stress = Cleaner(["webhost01.corp.example.com", "webhost01"], ["corp.example.com"], ["alice"])
        start = time.perf_counter()
        stress.clean(dense)
        t_dense = time.perf_counter() - start
        print(f"stress: dense synthetic journal ({len(dense) / 1e6:.0f} MB, a host name per line, an address "
              f"every other line): {len(dense) / t_dense / 1e6:.1f} MB/s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
