"""Shutdown checks: how the last shutdown ended, and which services took longest to stop."""

from __future__ import annotations

from collectors.checks import facts
from collectors.checks.base import Check, Result, passed, skip, warn
from collectors.checks.host import Host
from collectors.checks.parsers.journal import shutdown_end, unit_stop_times

SLOW_STOP = 30.0   # seconds; systemd's DefaultTimeoutStopSec is 90


class LastShutdown(Check):
    id = "shutdown.last"
    phase = "shutdown"
    title = "How the last shutdown ended"

    def run(self, host: Host) -> Result:
        prev = facts.previous_boot(host)
        if prev is None:
            end, path = facts.wtmp_end(host)
            if end is None:
                return skip("no previous boot in the journal or wtmp")
            if end.clean:
                return passed("shutdown recorded in wtmp", end.evidence)
            return warn("no shutdown recorded in wtmp: the previous boot ended abruptly", end.evidence,
                        "See boot.unclean_shutdown and boot.previous_panic.")
        j = shutdown_end(list(prev.entries))
        ev = list(j.evidence)
        took = None
        if j.started is not None and j.ended is not None:
            took = j.ended - j.started
            ev.append(f"from the first 'Stopping' to the last entry: {took:.1f} s")
        if j.method == "panic":
            return warn("the previous boot ended in a kernel panic", ev,
                        "Read the panic in the previous boot's journal (journalctl -k -b -1 -e).")
        if not j.clean:
            return warn("the previous boot's journal ends without a shutdown", ev,
                        "Power loss, reset or a hang: see the last entries above.")
        return passed(f"clean {j.method}" + (f" in {took:.0f} s" if took is not None else ""), ev)


class SlowStops(Check):
    id = "shutdown.slow_units"
    phase = "shutdown"
    title = "Services that took longest to stop"

    def run(self, host: Host) -> Result:
        prev = facts.previous_boot(host)
        if prev is None:
            return skip("no previous boot in the journal")
        stops = unit_stop_times(list(prev.entries))
        if not stops:
            return skip("the previous boot's journal has no service stop messages")
        ev = [f"{s.unit}: {s.seconds:.1f} s" + (" (timed out, killed)" if s.timed_out else "")
              for s in stops[:10]]
        slow = [s for s in stops if s.seconds >= SLOW_STOP or s.timed_out]
        if slow:
            return warn(f"{slow[0].unit} took {slow[0].seconds:.0f} s to stop", ev,
                        "Make the service stop faster (its ExecStop/KillMode) or lower TimeoutStopSec.")
        return passed(f"slowest stop: {stops[0].unit} in {stops[0].seconds:.1f} s", ev)
