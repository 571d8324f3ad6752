"""Container and VM checks, from the state collector (``crashkit state --json``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from collectors.checks import facts
from collectors.checks.base import Check, Result, fail, passed, skip, warn
from collectors.checks.host import Host

#: Native states that are transitional or stuck (lower-cased tool strings).
TRANSITIONAL = frozenset({"starting", "stopping", "restarting", "removing", "migrating", "in shutdown",
                          "shutting down", "mounting", "unmounting", "suspending", "resuming",
                          "pmsuspended", "blocked", "dead", "created", "paused"})
RESTART_LOOP = 3


def instances(state: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for res in state.values():
        if isinstance(res, dict):
            for inst in res.get("instances") or ():
                if isinstance(inst, dict):
                    yield inst


def _name(inst: dict[str, Any]) -> str:
    return f"{inst.get('tech')} {inst.get('name') or inst.get('id')}"


def _no_state(state: dict[str, Any]) -> Result | None:
    present = [t for t, r in state.items() if isinstance(r, dict) and r.get("status") == "present"]
    errors = [f"{t}: {r.get('error')}" for t, r in state.items() if isinstance(r, dict) and r.get("status") == "error"]
    if not present and not errors:
        return skip("no container or VM technology on this host")
    return None


class InstanceStates(Check):
    id = "containers.states"
    phase = "containers"
    title = "Containers and VMs in crashed, stuck or transitional states"

    def run(self, host: Host) -> Result:
        state = facts.state(host)
        if (none := _no_state(state)) is not None:
            return none
        crashed, odd, total = [], [], 0
        for inst in instances(state):
            total += 1
            native = str(inst.get("native_state") or "").lower()
            if inst.get("state") == "crashed":
                crashed.append(f"{_name(inst)}: crashed ({native})")
            elif native in TRANSITIONAL or inst.get("state") in ("paused", "suspended", "mounted"):
                odd.append(f"{_name(inst)}: {inst.get('state')} ({native})")
        errors = [f"{t}: {r.get('error')}" for t, r in state.items() if isinstance(r, dict) and r.get("status") == "error"]
        ev = crashed + odd + [f"state collector error: {e}" for e in errors]
        if crashed:
            return fail(f"{len(crashed)} instance(s) crashed: {crashed[0]}", ev,
                        "Collect the guest's crash (virsh dump / its kdump) and restart it.")
        if odd:
            return warn(f"{len(odd)} of {total} instance(s) stuck or in transition: {odd[0]}", ev,
                        "See why it does not settle (virsh domstate --reason, prlctl status, podman inspect).")
        if errors:
            return warn(f"the state of {len(errors)} technology could not be read: {errors[0]}", ev,
                        "Run `crashkit state` to see the error.")
        return passed(f"{total} instance(s), none crashed or stuck", ev)


class Beancounters(Check):
    id = "containers.beancounters"
    phase = "containers"
    title = "OpenVZ beancounter failcnt"

    def run(self, host: Host) -> Result:
        state = facts.state(host)
        ov = state.get("openvz")
        if not isinstance(ov, dict) or ov.get("status") != "present":
            return skip("no OpenVZ on this host")
        ev = []
        for inst in instances({"openvz": ov}):
            for f in (inst.get("extra") or {}).get("findings") or ():
                ev.append(f"CT {inst.get('id')}: {f.get('resource')} failcnt {f.get('failcnt')} "
                          f"(held {f.get('held')}, barrier {f.get('barrier')}, limit {f.get('limit')})")
        if ev:
            return warn(f"{len(ev)} beancounter(s) hit their limit: {ev[0]}", ev,
                        "Raise the container's limit (vzctl/prlctl set --RESOURCE) or find the consumer.")
        return passed("no beancounter failcnt")


class RestartLoops(Check):
    id = "containers.restart_loop"
    phase = "containers"
    title = "Containers restarting in a loop"

    def run(self, host: Host) -> Result:
        state = facts.state(host)
        if (none := _no_state(state)) is not None:
            return none
        ev = []
        for inst in instances(state):
            extra = inst.get("extra") or {}
            count = extra.get("restart_count")
            native = str(inst.get("native_state") or "").lower()
            if native == "restarting" or (isinstance(count, int) and count >= RESTART_LOOP):
                ev.append(f"{_name(inst)}: {native or inst.get('state')}, restart count {count}")
        if ev:
            return warn(f"{len(ev)} container(s) restarting in a loop: {ev[0]}", ev,
                        "Read its logs (podman/docker logs NAME) and the crash it restarts from.")
        return passed("no container restarting in a loop")


class VmIoError(Check):
    id = "containers.vm_io_error"
    phase = "containers"
    title = "VMs paused on an I/O error"

    def run(self, host: Host) -> Result:
        state = facts.state(host)
        lv = state.get("libvirt")
        if not isinstance(lv, dict) or lv.get("status") != "present":
            return skip("no libvirt on this host")
        ev = [f"{_name(i)}: {i.get('native_state')} ({(i.get('extra') or {}).get('reason')})"
              for i in instances({"libvirt": lv})
              if "ioerror" in str((i.get("extra") or {}).get("reason") or "").replace(" ", "").lower()]
        if ev:
            return fail(f"{len(ev)} VM(s) paused on an I/O error: {ev[0]}", ev,
                        "Free space or fix the storage under the disk image, then `virsh resume`.")
        return passed("no VM paused on an I/O error")


class DiskImages(Check):
    id = "containers.disk_images"
    phase = "containers"
    title = "Disk images present"

    def run(self, host: Host) -> Result:
        state = facts.state(host)
        if (none := _no_state(state)) is not None:
            return none
        missing, total = [], 0
        for inst in instances(state):
            for disk in inst.get("disks") or ():
                path = disk.get("path") if isinstance(disk, dict) else None
                if not path or not str(path).startswith("/"):
                    continue
                total += 1
                if not os.path.lexists(host.path(str(path))):
                    missing.append(f"{_name(inst)}: {path} missing")
        if missing:
            return fail(f"{len(missing)} disk image(s) missing: {missing[0]}", missing,
                        "Restore the image or remove the disk from the instance's configuration.")
        return passed(f"all {total} disk image(s) present")
