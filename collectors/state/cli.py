"""``crashkit state``: containers and VMs on this host, or which one a process belongs to."""

from __future__ import annotations

import argparse
import sys

from collectors.errors import StateError

EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``state`` command."""
    p = subparsers.add_parser(
        "state", help="containers and VMs on this host (OpenVZ, LXC, Docker, Podman, libvirt, nspawn, QEMU)",
        description="Snapshot every container and VM on the host, or attribute one process (--pid).")
    p.add_argument("--json", action="store_true", help="print JSON (keys in docs/state.md)")
    p.add_argument("--tech", metavar="T,...",
                   help="only these technologies (openvz,lxc,docker,podman,libvirt,nspawn,qemu)")
    p.add_argument("--libvirt-uri", metavar="URI", help="libvirt connection URI (default qemu:///system)")
    p.add_argument("--root", metavar="DIR", help="read a host tree mounted at DIR instead of this host")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="per-command timeout (default 10)")
    p.add_argument("--pid", type=int, metavar="PID", help="which container or VM process PID belongs to")
    p.set_defaults(func=run_state)


def run_state(args: argparse.Namespace) -> int:
    """Handler of ``crashkit state``: exit 0 (2 on bad input: an unknown --tech, a bad --root)."""
    from collectors.state import render

    if args.pid is not None:
        return _run_pid(args)
    from collectors.state.base import DEFAULT_LIBVIRT_URI, DEFAULT_TIMEOUT, Options
    from collectors.state.collect import collect_state

    if args.timeout is not None and not args.timeout > 0:
        raise StateError("--timeout must be a positive number of seconds")
    options = Options(root=args.root or "/", libvirt_uri=args.libvirt_uri or DEFAULT_LIBVIRT_URI,
                      timeout=args.timeout or DEFAULT_TIMEOUT)
    techs = [t.strip() for t in args.tech.split(",") if t.strip()] if args.tech else None
    results = collect_state(options, techs)
    if args.json:
        render.dump_json(render.state_json(results), sys.stdout)
    else:
        render.write_table(results, sys.stdout)
    return 0


def _run_pid(args: argparse.Namespace) -> int:
    from collectors.state import attribution, render

    if args.pid <= 0:
        raise StateError(f"--pid {args.pid}: not a process id")
    proc = (args.root.rstrip("/") + "/proc") if args.root else "/proc"
    att = attribution.attribute_pid(args.pid, proc)
    if att.pid and not att.signals and att.init_pid is None:
        import os

        if not os.path.isdir(f"{proc}/{args.pid}"):
            raise StateError(f"no process {args.pid}")
    att = attribution.resolve_name(att, args.root or "")
    if args.json:
        render.dump_json(att.to_json(), sys.stdout)
    else:
        render.write_attribution(att, sys.stdout)
    return 0
