"""Progress of a diagnose run: a rich display naming the running sections on a terminal,
plain lines on a pipe or file, nothing with --quiet."""

from __future__ import annotations

import sys
from typing import Any, TextIO


class Progress:
    """Plain lines (also the base of the terminal display)."""

    def __init__(self, out: TextIO | None = None, total: int = 0) -> None:
        self.out = out or sys.stderr
        self.total = total
        self.count = 0

    def start(self, name: str, title: str) -> None:
        pass

    def finish(self, name: str, run: Any) -> None:
        self.count += 1
        note = f" ({run.error})" if run.error else ""
        self.out.write(f"crashkit diagnose: [{self.count}/{self.total}] {name}: {run.status} in "
                       f"{run.duration:.1f} s, {run.items} items, {run.size / 1e6:.1f} MB{note}\n")
        self.out.flush()

    def note(self, text: str) -> None:
        self.out.write(f"crashkit diagnose: {text}\n")
        self.out.flush()

    def close(self) -> None:
        pass


class Quiet(Progress):
    def finish(self, name: str, run: Any) -> None:
        pass

    def note(self, text: str) -> None:
        pass


class RichProgress(Progress):
    """A rich progress bar whose description names the sections still running."""

    def __init__(self, out: TextIO | None = None, total: int = 0) -> None:
        super().__init__(out, total)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RP

        self._running: list[str] = []
        self._rp = RP(SpinnerColumn(), TextColumn("[bold]diagnose[/]"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), TextColumn("{task.description}"),
                      console=Console(file=self.out), transient=False)
        self._task = self._rp.add_task("", total=total)
        self._rp.start()

    def _describe(self) -> None:
        self._rp.update(self._task, description=", ".join(self._running))

    def start(self, name: str, title: str) -> None:
        self._running.append(name)
        self._describe()

    def finish(self, name: str, run: Any) -> None:
        self.count += 1
        if name in self._running:
            self._running.remove(name)
        if run.status != "ok":
            self._rp.console.print(f"  {name}: {run.status} ({run.error})")
        self._rp.update(self._task, advance=1)
        self._describe()

    def note(self, text: str) -> None:
        self._rp.console.print(text)

    def close(self) -> None:
        self._rp.stop()


def make_progress(quiet: bool, total: int, out: TextIO | None = None) -> Progress:
    out = out or sys.stderr
    if quiet:
        return Quiet(out, total)
    if out.isatty():
        return RichProgress(out, total)
    return Progress(out, total)
